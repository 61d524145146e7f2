# tests/vtpm-peer.mk - blobstore-vtpm against real peers, beyond make check
# (included by the top-level Makefile; docs/VTPM.md has the figures):
#
#   make vtpm-peer-libvirt   a private libvirtd runs a TCG domain whose
#                            <tpm> is blobstore-vtpm as `swtpm` (root;
#                            tests/peer/libvirt.sh)
#   make vtpm-peer-suite TPM2_TOOLS_SRC=DIR
#                            tpm2-tools 5.4's own integration suite through
#                            tpm2-abrmd, against blobstore-vtpm and then
#                            swtpm (tests/peer/tpm2-tools-suite.sh); DIR is a
#                            tpm2-tools 5.4 source tree (not in Debian:
#                            its git tag 5.4, test/integration, tools, man)
#   make vtpm-peer           both

.PHONY: vtpm-peer vtpm-peer-libvirt vtpm-peer-suite

# The build in a sub-make after deps, as make check does.
vtpm-peer-libvirt: DEPS_FOR := vtpm-peer
vtpm-peer-libvirt: deps
	@$(MAKE) --no-print-directory all
	@tests/peer/libvirt.sh $(O)

vtpm-peer-suite: DEPS_FOR := vtpm-peer
vtpm-peer-suite: deps
	@$(MAKE) --no-print-directory all
	@test -n "$(TPM2_TOOLS_SRC)" || { echo "give TPM2_TOOLS_SRC=<tpm2-tools 5.4 source tree>"; exit 2; }
	@TPM2_TOOLS_SRC=$(TPM2_TOOLS_SRC) OUT=$(CURDIR)/$(O)/tpm2-suite.blobstore-vtpm \
	  tests/peer/tpm2-tools-suite.sh $(CURDIR)/$(VTPM); st=$$?; \
	TPM2_TOOLS_SRC=$(TPM2_TOOLS_SRC) OUT=$(CURDIR)/$(O)/tpm2-suite.swtpm \
	  tests/peer/tpm2-tools-suite.sh swtpm; exit $$st

vtpm-peer: vtpm-peer-libvirt vtpm-peer-suite
