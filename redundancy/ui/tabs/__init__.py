"""The app's tabs, one module each: `build()` lays out its components, `wire(ui)` connects them to its handlers,
`RESETS` names the outputs a new Load empties."""

from . import ablation, channels, data, figures, guide, paper, results, search, yours

# (label, id, module) of every tab, in order; short labels so that all of them fit a phone's width.
TABS = (
    ("Data", "data", data),
    ("Channels", "explore", channels),
    ("Ablation", "ablate", ablation),
    ("Search", "search", search),
    ("Results", "results", results),
    ("Your image", "yours", yours),
    ("Figures", "figures", figures),
    ("Guide", "teach", guide),
    ("Paper", "paper", paper),
)
