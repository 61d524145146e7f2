# examples/examples.mk - example programs, included by the top-level Makefile
# before tests/tests.mk so that `make tests` builds them too.
#
#   versioned-v1/-v2/-v3  one source (examples/versioned/device.c) built as
#                         three versions of a device (docs/DEVICE-API.md)

EXAMPLE_BINS := $(O)/examples/versioned-v1 $(O)/examples/versioned-v2 $(O)/examples/versioned-v3

$(O)/examples/versioned-v%: examples/versioned/device.c $(STATIC) $(wildcard include/*.h)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -DDEVICE_VERSION=$* -o $@ $< $(STATIC) $(LDFLAGS) $(LIBS)

all: $(EXAMPLE_BINS)

# blobstore-vtpm: a TPM 2.0 server (libtpms + the bridge in nvram/tpm.c)
# speaking swtpm's socket protocol (docs/VTPM.md); installed by make install.
VTPM := $(O)/blobstore-vtpm
VTPM_SRC := examples/vtpm/main.c examples/vtpm/proto.c
$(VTPM): $(VTPM_SRC) examples/vtpm/proto.h $(STATIC) $(wildcard include/*.h)
	$(CC) $(CFLAGS) -o $@ $(VTPM_SRC) $(STATIC) $(LDFLAGS) $(LIBS)

EXAMPLE_BINS += $(VTPM)
all: $(VTPM)
