"""Reports: publication figures (matplotlib) and interactive ones (plotly), pure pair-gain views, the result
summary text the CLI and the app share, and sharing a run on the Hub with its model card."""
