"""redundancy web app: build the page (`redundancy/ui`, one module per tab) and serve it.

Run `python app.py` (or as a Hugging Face Space) and open http://127.0.0.1:7860.
"""

from redundancy import threads

threads.serve()  # before torch loads: how the app's torch threads wait (`redundancy/threads.py`)

from redundancy.interactive import zerogpu  # noqa: E402, F401  (on ZeroGPU, `spaces` patches torch before anything else)
from redundancy.ui import build_demo, launch  # noqa: E402

demo = build_demo()

if __name__ == "__main__":
    launch(demo)
