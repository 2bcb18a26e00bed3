"""redundancy web app: build the page (`redundancy/ui`, one module per tab) and serve it.

Run `python app.py` (or as a Hugging Face Space) and open http://127.0.0.1:7860.
"""

from redundancy.interactive import zerogpu  # noqa: F401  (on ZeroGPU, `spaces` must patch torch before anything else)
from redundancy.ui import build_demo, launch

demo = build_demo()

if __name__ == "__main__":
    launch(demo)
