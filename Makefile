# The two commands: `make run` and `make test`. Each sets itself up when needed.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test bench bench-live setup clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[test]'
	touch $(STAMP)

setup: $(STAMP)

## Analyse a sample capture (crafted with Scapy: benign traffic + one port scan) and print alerts.
run: $(STAMP)
	$(BIN)/python -m wirewatch.demo var/sample.pcap
	$(BIN)/wirewatch read var/sample.pcap --logfile var/alerts.json

## The whole test suite.
test: $(STAMP)
	$(BIN)/python -m pytest

## Throughput and memory benchmark (builds its capture once, cached under var/bench/).
bench: $(STAMP)
	$(BIN)/python bench/bench_read.py

## Live capture benchmark (root): tcpreplay onto a veth, sensor on the peer.
bench-live: $(STAMP)
	$(BIN)/python bench/bench_live.py

clean:
	rm -rf $(VENV) var build src/*.egg-info
