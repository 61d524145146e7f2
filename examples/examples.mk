# examples/examples.mk - example programs, included by the top-level Makefile
# before tests/tests.mk so that `make tests` builds them too.
#
#   versioned-v1/-v2/-v3  one source (examples/versioned/device.c) built as
#                         three versions of a device (docs/DEVICE-API.md)

EXAMPLE_BINS := $(O)/examples/versioned-v1 $(O)/examples/versioned-v2 $(O)/examples/versioned-v3

$(O)/examples/versioned-v%: examples/versioned/device.c $(STATIC) $(HEADERS)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(PUB_INC) -DDEVICE_VERSION=$* -o $@ $< $(STATIC) $(LDFLAGS) $(CORE_LIBS)

all: $(EXAMPLE_BINS)

# blobstore-vtpm: a TPM 2.0 server (libtpms + the bridge in nvram/tpm.c)
# speaking swtpm's socket protocol (docs/VTPM.md); installed by make install.
VTPM := $(O)/blobstore-vtpm
VTPM_SRC := examples/vtpm/main.c examples/vtpm/proto.c
VTPM_SRC += examples/vtpm/cli.c examples/vtpm/state.c
$(VTPM): $(VTPM_SRC) $(wildcard examples/vtpm/*.h) $(ALL_STATIC) $(HEADERS)
	$(CC) $(CFLAGS) $(PUB_INC) $(call pkg_cflags,libtpms) -o $@ $(VTPM_SRC) $(ALL_STATIC) $(LDFLAGS) \
	  $(ALL_LIBS)

EXAMPLE_BINS += $(VTPM)
all: $(VTPM)
