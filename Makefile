# dockspec: make test (what CI runs) · make report · make conformance TARGET=…
#           make services / make services-down · make check-steps · make unit
PY      ?= .venv/bin/python
TARGET  ?= docker
TARGETS ?= docker podman
RESULTS ?= reports/results
BUILD   ?= build

.PHONY: test unit check-steps conformance report services services-down bootstrap clean vm-test

bootstrap:
	scripts/bootstrap

# What CI runs: the step check, the unit and property tests, then the whole
# suite against real Docker; the results become a report under build/.
test: check-steps unit
	$(PY) -m pytest conformance --target docker --results $(BUILD)/results/docker.jsonl
	$(PY) -m conformance report --results $(BUILD)/results --out $(BUILD)/report

unit:
	$(PY) -m pytest tests -q

check-steps:
	$(PY) -m conformance check-steps

# One target: make conformance TARGET=podman
conformance:
	$(PY) -m pytest conformance --target $(TARGET) --results $(RESULTS)/$(TARGET).jsonl

# The main job: every available target, then reports/compat.md and compat.html.
report:
	$(PY) -m conformance run-all --results $(RESULTS) $(TARGETS)
	$(PY) -m conformance report --results $(RESULTS) --out reports

services:
	$(PY) -m conformance services up docker podman

services-down:
	$(PY) -m conformance services down

clean:
	rm -rf $(BUILD) .pytest_cache

# The suite inside a Vagrant VM (vm/runner.py); the report lands in reports/vm/.
# SUITE=smoke|full; VM_BOX=local (built by vm/build-box) or a public box such as
# debian/bookworm64; VM_PROVIDER=libvirt|virtualbox; VM_KEEP=1 leaves the VM up.
SUITE       ?= smoke
VM_BOX      ?= local
VM_PROVIDER ?= libvirt
VM_KEEP     ?= 0
vm-test:
	SUITE=$(SUITE) VM_BOX=$(VM_BOX) VM_PROVIDER=$(VM_PROVIDER) VM_KEEP=$(VM_KEEP) $(PY) vm/runner.py
