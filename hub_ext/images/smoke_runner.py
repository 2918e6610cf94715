"""What a smoke test runs INSIDE the throw-away container (hub_ext.images.smoke sends this
file's source with `python -c`): run one notebook top to bottom with nbclient, or look for a
GPU. Standard library only at import (nbclient and torch are the image's, imported when
used), so it also runs by itself on any machine:

    python3 hub_ext/images/smoke_runner.py gpu-probe

Its last line of output is RESULT_MARK followed by one JSON object, which the host reads:
- notebook: {"ok": true} | {"ok": false, "cell": N, "ename": ..., "evalue": ...}
  (N: the code cell's number counted from the top among code cells only, 1-based, which is
  the In [N] Jupyter shows after a top-to-bottom run) | {"ok": false, "timeout": true, "cell": N}
  | {"ok": false, "error": "..."} (the notebook could not be read or its kernel started).
- gpu-probe: {"ok": bool, "how": "torch" | "nvidia-smi" | "", "found": "..."}.
Rule: the whole notebook shares one budget; each cell may use what the earlier ones left.
"""

import json
import subprocess
import sys
import time

RESULT_MARK = "GOLDENHUB-SMOKE-RESULT "


def _say(result: dict) -> int:
    print(RESULT_MARK + json.dumps(result), flush=True)
    return 0


def run_notebook(path: str, budget_s: float) -> dict:
    try:
        import nbformat
        from nbclient import NotebookClient
        from nbclient.exceptions import CellExecutionError, CellTimeoutError
    except ImportError as e:
        return {"ok": False, "error": f"the image has no nbclient to run notebooks with ({e})"}

    try:
        nb = nbformat.read(path, as_version=4)
    except Exception as e:  # unreadable JSON or an unknown notebook format
        return {"ok": False, "error": f"the notebook could not be read: {str(e)[:300]}"}
    deadline = time.monotonic() + budget_s
    client = NotebookClient(nb, timeout=budget_s, allow_errors=False, resources={"metadata": {"path": "."}})
    code_cell = 0
    try:
        with client.setup_kernel():
            for index, cell in enumerate(nb.cells):
                if cell.cell_type != "code":
                    continue
                code_cell += 1
                left = deadline - time.monotonic()
                if left <= 0:
                    return {"ok": False, "timeout": True, "cell": code_cell}
                client.timeout = max(1, int(left))
                try:
                    client.execute_cell(cell, index)
                except CellTimeoutError:
                    return {"ok": False, "timeout": True, "cell": code_cell}
                except CellExecutionError as e:
                    return {"ok": False, "cell": code_cell, "ename": str(e.ename)[:200],
                            "evalue": str(e.evalue)[:500]}
    except Exception as e:  # no such kernel, a kernel that died
        return {"ok": False, "cell": code_cell, "error": f"{type(e).__name__}: {str(e)[:300]}"}
    return {"ok": True, "cells": code_cell}


def gpu_probe() -> dict:
    """torch.cuda where torch imports (the framework itself sees the GPU), else nvidia-smi -L."""
    try:
        import torch
    except Exception:
        torch = None
    if torch is not None:
        if torch.cuda.is_available():
            names = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
            return {"ok": True, "how": "torch", "found": "; ".join(names)}
        return {"ok": False, "how": "torch", "found": "torch.cuda.is_available() is False"}
    try:
        done = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired) as e:
        return {"ok": False, "how": "nvidia-smi", "found": f"nvidia-smi could not run: {e}"}
    listed = done.stdout.strip()
    ok = done.returncode == 0 and "GPU" in listed
    return {"ok": ok, "how": "nvidia-smi", "found": (listed or done.stderr.strip())[:500]}


def main(argv: list) -> int:
    if argv[:1] == ["notebook"] and len(argv) == 3:
        return _say(run_notebook(argv[1], float(argv[2])))
    if argv[:1] == ["gpu-probe"]:
        return _say(gpu_probe())
    print("usage: smoke_runner.py notebook PATH BUDGET_S | gpu-probe", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
