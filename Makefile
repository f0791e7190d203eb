# The two commands: `make run` and `make test`. Each sets itself up when needed.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
NODE_STAMP := node_modules/.installed
# interface for `make run`: the default-route one unless IFACE=... is given
IFACE ?= $(shell awk '$$2 == "00000000" { print $$1; exit }' /proc/net/route 2>/dev/null)

.PHONY: run test bench bench-live bench-web bench-storm bench-tune setup sample clean install install-files

$(STAMP): pyproject.toml setup.py $(wildcard src/wirewatch/native/*.c src/wirewatch/native/*.h)
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[test]'
	$(BIN)/python -m compileall -q src  # bytecode written even under PYTHONDONTWRITEBYTECODE: ~0.1 s less start-up
	touch $(STAMP)

$(NODE_STAMP): package.json
	npm install --no-audit --no-fund --loglevel=error
	touch $(NODE_STAMP)

ENRICH_STAMP := var/enrich/.built-$(shell sed -n 's/.*"@ip-location-db\/asn": "\(.*\)".*/\1/p' package.json)

$(ENRICH_STAMP): $(STAMP) $(NODE_STAMP)
	$(BIN)/python -m wirewatch.enrich_data var  # the enrichment data's lookup arrays (seconds, once per data version)
	touch $(ENRICH_STAMP)

setup: $(STAMP) $(NODE_STAMP) $(ENRICH_STAMP)

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
	$(BIN)/python bench/bench_web_fleet.py

## Storm control: 200,000 forged-source SYNs to a watched port through `read --db` (< 10 s, <= 20 alerts).
bench-storm: setup
	$(BIN)/python bench/bench_storm.py

## wirewatch tune vs wirewatch read on the benchmark capture: packets/s by wall and CPU time (target >= 0.5x).
bench-tune: setup
	$(BIN)/python bench/bench_tune.py

## Install under PREFIX (a venv of its own) with the systemd units, logrotate snippet and an
## example config; creates the users wirewatch and wirewatch-web (root; DESTDIR for packaging).
PREFIX ?= /opt/wirewatch
SYSTEMD_DIR ?= /etc/systemd/system
install: $(NODE_STAMP)
	$(PYTHON) -m venv $(DESTDIR)$(PREFIX)
	$(DESTDIR)$(PREFIX)/bin/pip install -q --upgrade pip
	$(DESTDIR)$(PREFIX)/bin/pip install -q .
	mkdir -p $(DESTDIR)$(PREFIX)/node_modules && cp -r node_modules/chart.js node_modules/@ip-location-db $(DESTDIR)$(PREFIX)/node_modules/
	$(MAKE) install-files
	@if [ -z "$(DESTDIR)" ] && [ "$$(id -u)" = 0 ]; then \
	  getent group wirewatch >/dev/null || groupadd --system wirewatch; \
	  getent passwd wirewatch >/dev/null || useradd --system --gid wirewatch --home-dir /var/lib/wirewatch \
	    --shell /usr/sbin/nologin wirewatch; \
	  getent group wirewatch-web >/dev/null || groupadd --system wirewatch-web; \
	  getent passwd wirewatch-web >/dev/null || useradd --system --gid wirewatch-web --home-dir /var/lib/wirewatch-web \
	    --shell /usr/sbin/nologin wirewatch-web; \
	  chgrp wirewatch /etc/wirewatch/wirewatch.toml; \
	  systemctl daemon-reload 2>/dev/null || true; \
	fi
	@echo "installed; next: systemctl enable --now wirewatch-sensor@IFACE wirewatch-dashboard (README: A fleet, step by step)"

## Only the files: units, logrotate snippet, example config (kept if present), README.
install-files:
	install -D -m 0644 deploy/systemd/wirewatch-sensor@.service $(DESTDIR)$(SYSTEMD_DIR)/wirewatch-sensor@.service
	install -D -m 0644 deploy/systemd/wirewatch-dashboard.service $(DESTDIR)$(SYSTEMD_DIR)/wirewatch-dashboard.service
	install -D -m 0644 deploy/logrotate/wirewatch $(DESTDIR)/etc/logrotate.d/wirewatch
	test -e $(DESTDIR)/etc/wirewatch/wirewatch.toml || install -D -m 0640 deploy/wirewatch.toml $(DESTDIR)/etc/wirewatch/wirewatch.toml
	install -D -m 0644 README.md $(DESTDIR)$(PREFIX)/share/README.md

clean:
	rm -rf $(VENV) var build src/*.egg-info node_modules
