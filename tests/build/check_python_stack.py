"""The Python stack that tests compare bireco with is the pinned one (scripts/lib/python-tools.txt):
a newer transformers or sentence-transformers must not silently change what the tests check.
Exit 77 (ctest: skipped) when the stack is absent and BIRECO_REQUIRE_PYTHON_TOOLS is not 1."""
import importlib.metadata
import os
import sys

pins = {}
with open(sys.argv[1]) as f:
    for line in f:
        line = line.split("#")[0].strip()
        if line:
            name, version = line.split("==")
            pins[name] = version

wrong = []
for name, version in pins.items():
    try:
        have = importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        have = None
    if have != version:
        wrong.append(f"{name}: pinned {version}, found {have or 'nothing'}")
if wrong:
    print(f"{sys.executable}:\n  " + "\n  ".join(wrong))
    if os.environ.get("BIRECO_REQUIRE_PYTHON_TOOLS") != "1" and any(w.endswith("found nothing") for w in wrong):
        print("skipping: the Python stack is not installed (scripts/lib/deps.sh bireco_install_python_tools)")
        sys.exit(77)
    sys.exit(1)
print(f"{len(pins)} pinned packages as pinned in {sys.executable}")
