# dockspec: make test (what CI runs) · make report · make conformance TARGET=…
#           make services / make services-down · make check-steps · make unit · make bench · make vm-test
PY      ?= .venv/bin/python
TARGET  ?= docker
TARGETS ?= docker podman refimpl refimpl-dockercli
RESULTS ?= reports/results
BUILD   ?= build

.PHONY: test unit check-steps conformance registry-pairing bench report differential services services-down bootstrap clean vm-test

bootstrap:
	scripts/bootstrap

# What CI runs: the step check, the unit and property tests, then the whole
# suite against real Docker (and the registry features against refimpl-registry),
# then against refimpld through the docker CLI and through our own CLI; the
# results become a report under build/.
test: check-steps unit
	$(PY) -m pytest conformance --target docker --results $(BUILD)/results/docker.jsonl
	$(MAKE) registry-pairing TARGET=docker RESULTS=$(BUILD)/results
	$(PY) -m pytest conformance --target refimpl-dockercli --results $(BUILD)/results/refimpl-dockercli.jsonl
	$(MAKE) registry-pairing TARGET=refimpl-dockercli RESULTS=$(BUILD)/results
	$(PY) -m pytest conformance --target refimpl --results $(BUILD)/results/refimpl.jsonl
	$(PY) -m conformance report --results $(BUILD)/results --out $(BUILD)/report

unit:
	$(PY) -m pytest tests -q

check-steps:
	$(PY) -m conformance check-steps

# One target: make conformance TARGET=podman
conformance:
	$(PY) -m pytest conformance --target $(TARGET) --results $(RESULTS)/$(TARGET).jsonl

# The registry features against refimpl-registry instead of Debian's
# docker-registry: the report's "<target>+refimpl-registry" column (~20 s).
REGISTRY_FEATURES ?= registry.feature or distribution.feature
registry-pairing:
	DOCKSPEC_REGISTRY_KIND=refimpl $(PY) -m pytest conformance --target $(TARGET) -k "$(REGISTRY_FEATURES)" --results $(RESULTS)/$(TARGET)+refimpl-registry.jsonl

# Side-by-side benchmarks (not part of make test): push/pull throughput of the
# Debian image, refimpl-registry against Debian's docker-registry
# (bench/results/registry.json); then refimpld against the host's dockerd through
# the docker CLI: run, create, start -a, ps, pull, 100 concurrent run -d
# (reports/bench.md, bench/results/engine.json).
bench:
	$(PY) -m bench.registry
	$(PY) -m bench.build
	$(PY) -m bench.network
	$(PY) -m bench.engine

# The main job: every available target, then reports/compat.md and compat.html.
# Registries are columns of their own: docker and refimpld against refimpl-registry
# too (the registry features only; the main columns use Debian's docker-registry).
REGISTRY_PAIRED ?= docker refimpl-dockercli
report:
	$(PY) -m conformance run-all --results $(RESULTS) $(TARGETS)
	for t in $(REGISTRY_PAIRED); do $(MAKE) registry-pairing TARGET=$$t RESULTS=$(RESULTS) || true; done
	$(PY) -m conformance report --results $(RESULTS) --out reports

# Random container lifecycles on two targets, compared: DOCKSPEC_DIFF=docker,podman make differential
differential:
	$(PY) -m pytest tests/conformance/test_differential.py -q

services:
	$(PY) -m conformance services up docker podman

services-down:
	$(PY) -m conformance services down

clean:
	rm -rf $(BUILD) .pytest_cache

# The suite inside a Vagrant VM (vm/runner.py); the report lands in reports/vm/.
# SUITE=smoke|full; VM_BOX=local (built by vm/build-box) or a public box such as
# debian/bookworm64; VM_PROVIDER=libvirt|virtualbox; VM_KEEP=1 leaves the VM up;
# VM_REQUIRE: the targets that must pass for exit 0 (default docker; CI requires all).
SUITE       ?= smoke
VM_BOX      ?= local
VM_PROVIDER ?= libvirt
VM_KEEP     ?= 0
VM_REQUIRE  ?= docker
vm-test:
	SUITE=$(SUITE) VM_BOX=$(VM_BOX) VM_PROVIDER=$(VM_PROVIDER) VM_KEEP=$(VM_KEEP) VM_REQUIRE="$(VM_REQUIRE)" $(PY) vm/runner.py
