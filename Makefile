# DeskPilot. Two commands on a fresh machine:
#   make run    set up .venv and run the app (tray where a display exists, else the kernel)
#   make test   set up everything the tests need (Debian packages included) and run them all
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
SYSTEM_PACKAGES := $(shell grep -v '^\#' scripts/system-packages.txt)

.PHONY: run test bench system-deps venv clean

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "DeskPilot needs Python 3.11 or newer")'
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]'
	touch $(STAMP)

venv: $(STAMP)

# Installs only what is missing; needs root (or sudo) and apt-get.
system-deps:
	@missing=""; for p in $(SYSTEM_PACKAGES); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "install ok installed" || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages:$$missing"; \
	  SUDO=""; [ "$$(id -u)" = 0 ] || SUDO=sudo; \
	  $$SUDO apt-get update -q && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -q $$missing; \
	fi

run: $(STAMP)
	@if [ -n "$$DISPLAY$$WAYLAND_DISPLAY" ]; then exec $(VENV)/bin/deskpilot app; fi; \
	echo "No display: running the kernel in the foreground (Ctrl-C stops it)."; \
	echo "In another terminal:  . $(VENV)/bin/activate && deskpilot ask 'what is in ~/Downloads?'"; \
	echo "                      deskpilot --help   lists every command"; \
	exec $(VENV)/bin/deskpilot kernel run

test: system-deps $(STAMP)
	$(PY) -m pytest -q

bench: system-deps $(STAMP)
	@$(PY) -m bench.scheduler

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .hypothesis
