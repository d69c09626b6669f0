# Two commands do everything:  `make demo` (set up, index the sample videos, search them)
# and `make test` (set up, run the whole test suite offline).
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
VIDEOS ?= ../shared/data/videos
STAMP  := $(VENV)/.installed

.PHONY: setup demo test bench clean

setup: $(STAMP)

# System packages: ffmpeg (ffprobe for tests and benchmarks). Installed with apt when missing.
$(VENV)/.system:
	@if ! command -v ffprobe >/dev/null 2>&1; then \
	  echo "installing Debian packages: ffmpeg"; \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq ffmpeg >/dev/null; \
	fi
	@mkdir -p $(VENV) && touch $@

$(STAMP): pyproject.toml $(VENV)/.system
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	# torch first, pinned: the versions this project is tested with (pip takes them from local disk here).
	$(BIN)/pip install -q torch==2.14.1 torchvision==0.29.1
	$(BIN)/pip install -q -e ".[dev]"
	touch $@

demo: setup
	VIDEOS="$(VIDEOS)" PATH="$(CURDIR)/$(BIN):$$PATH" bash scripts/demo.sh

test: setup
	$(BIN)/pytest -q

bench: setup
	$(BIN)/python benchmarks/index_stages.py --videos "$(VIDEOS)"

clean:
	rm -rf $(VENV) data
