# The two commands: `make run` and `make test`. Each sets itself up when needed.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
NODE_STAMP := node_modules/.installed
# interface for `make run`: the default-route one unless IFACE=... is given
IFACE ?= $(shell awk '$$2 == "00000000" { print $$1; exit }' /proc/net/route 2>/dev/null)

.PHONY: run test bench bench-live bench-web setup sample clean

$(STAMP): pyproject.toml setup.py $(wildcard src/wirewatch/native/*.c src/wirewatch/native/*.h)
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[test]'
	$(BIN)/python -m compileall -q src  # bytecode written even under PYTHONDONTWRITEBYTECODE: ~0.1 s less start-up
	touch $(STAMP)

$(NODE_STAMP): package.json
	npm install --no-audit --no-fund --loglevel=error
	touch $(NODE_STAMP)

setup: $(STAMP) $(NODE_STAMP)

## Live sensor on the default-route interface + dashboard on http://127.0.0.1:8080 (needs root).
run: setup
	@if [ "$$(id -u)" != 0 ]; then \
	  echo "make run starts live capture, which needs root: sudo make run"; \
	  echo "without root, analyse a capture file instead:  make sample && $(BIN)/wirewatch read var/sample.pcap"; \
	  exit 2; fi
	$(BIN)/wirewatch run -i $(IFACE)

## A crafted sample capture (benign traffic and one port scan), analysed with `wirewatch read`.
sample: setup
	$(BIN)/python -m wirewatch.demo var/sample.pcap
	$(BIN)/wirewatch read var/sample.pcap --logfile var/alerts.json --db var/wirewatch.db

## The whole test suite (unit, corpus, live namespaces and browser tests).
test: setup
	$(BIN)/python -m pytest

## Throughput and memory benchmark: wirewatch read vs tcpdump on the reference captures (recorded
## once as root, cached under var/bench/; needs tcpdump, editcap and mergecap from wireshark-common),
## then vs a per-packet Scapy IDS on a generated capture.
bench: setup
	$(BIN)/python -m compileall -q src
	$(BIN)/python bench/bench_read.py

## Live capture benchmark (root): tcpreplay onto a veth, sensor on the peer.
bench-live: setup
	$(BIN)/python bench/bench_live.py

## Dashboard latency with a million stored alerts.
bench-web: setup
	$(BIN)/python bench/bench_web.py

clean:
	rm -rf $(VENV) var build src/*.egg-info node_modules
