/* uefi_sbprobe.c - a tiny UEFI application (x86-64) for test_uefi_secureboot.sh.
 *
 * Prints, on the firmware console (which OVMF mirrors to the serial port):
 *   SBPROBE: start
 *   SBPROBE: SecureBoot=XX   (hex octet, or "absent")
 *   SBPROBE: SetupMode=XX
 *   SBPROBE: QueryVariableInfo attr=AA max=M remaining=R maxvar=V  (hex,
 *            for AA = 07 NV+BS+RT and 27 NV+BS+RT+AT)
 *   SBPROBE: end
 * then powers the machine off (ResetSystem(EfiResetShutdown)), so QEMU exits.
 *
 * Built unsigned, so firmware with Secure Boot enforced refuses to load it
 * ("Access Denied" from BdsDxe); signed with a key in db it runs under Secure
 * Boot too and reports SecureBoot=01.
 *
 * Freestanding: no gnu-efi, no headers; every table offset is the UEFI
 * spec's (EFI_SYSTEM_TABLE, EFI_RUNTIME_SERVICES, SIMPLE_TEXT_OUTPUT).
 * Only RIP-relative addressing, so the image needs no base relocations. */
typedef unsigned char u8;
typedef unsigned short u16;
typedef unsigned int u32;
typedef unsigned long long u64;
typedef u64 status_t;
#define EFIAPI __attribute__((ms_abi))

struct guid { u32 d1; u16 d2, d3; u8 d4[8]; };
struct hdr { u64 signature; u32 revision, size, crc32, reserved; };
struct text_out {
	void *reset;
	status_t (EFIAPI *output_string)(struct text_out *, const u16 *);
};
struct runtime {
	struct hdr hdr;
	void *get_time, *set_time, *get_wakeup_time, *set_wakeup_time;
	void *set_virtual_address_map, *convert_pointer;
	status_t (EFIAPI *get_variable)(const u16 *name, const struct guid *vendor,
					u32 *attributes, u64 *size, void *data);
	void *get_next_variable_name, *set_variable, *get_next_high_monotonic_count;
	void (EFIAPI *reset_system)(u32 type, status_t status, u64 size, void *data);
	void *update_capsule, *query_capsule_capabilities;
	status_t (EFIAPI *query_variable_info)(u32 attributes, u64 *max_storage,
					       u64 *remaining, u64 *max_variable);
};
struct system_table {
	struct hdr hdr;
	u16 *firmware_vendor;
	u32 firmware_revision;
	void *con_in_handle, *con_in, *con_out_handle;
	struct text_out *con_out;
	void *std_err_handle, *std_err;
	struct runtime *rt;
	void *bs;
};

static const struct guid global = {0x8be4df61, 0x93ca, 0x11d2,
				   {0xaa, 0x0d, 0x00, 0xe0, 0x98, 0x03, 0x2b, 0x8c}};

static void out(struct system_table *st, const u16 *s)
{
	st->con_out->output_string(st->con_out, s);
}

static void report(struct system_table *st, const u16 *line, const u16 *name)
{
	u8 v[8];
	u64 size = sizeof v;
	u16 hex[4];
	static const char digits[] = "0123456789ABCDEF";
	out(st, line);
	if (st->rt->get_variable(name, &global, 0, &size, v) == 0 && size >= 1) {
		hex[0] = (u16)digits[v[0] >> 4];
		hex[1] = (u16)digits[v[0] & 15];
		hex[2] = 0;
		out(st, hex);
	} else {
		out(st, u"absent");
	}
	out(st, u"\r\n");
}

static void hex64(struct system_table *st, u64 v)
{
	static const char digits[] = "0123456789abcdef";
	u16 buf[19];
	int i = 18, n = 0;
	buf[i] = 0;
	do {
		buf[--i] = (u16)digits[v & 15];
		v >>= 4;
		n++;
	} while (v && n < 16);
	buf[--i] = 'x';
	buf[--i] = '0';
	out(st, buf + i);
}

static void query(struct system_table *st, u32 attributes, const u16 *label)
{
	u64 max = 0, remaining = 0, maxvar = 0;
	out(st, u"SBPROBE: QueryVariableInfo attr=");
	out(st, label);
	if (st->rt->query_variable_info(attributes, &max, &remaining, &maxvar) != 0) {
		out(st, u" failed\r\n");
		return;
	}
	out(st, u" max=");
	hex64(st, max);
	out(st, u" remaining=");
	hex64(st, remaining);
	out(st, u" maxvar=");
	hex64(st, maxvar);
	out(st, u"\r\n");
}

status_t EFIAPI efi_main(void *image, struct system_table *st)
{
	(void)image;
	out(st, u"\r\nSBPROBE: start\r\n");
	report(st, u"SBPROBE: SecureBoot=", u"SecureBoot");
	report(st, u"SBPROBE: SetupMode=", u"SetupMode");
	query(st, 0x07, u"07");
	query(st, 0x27, u"27");
	out(st, u"SBPROBE: end\r\n");
	st->rt->reset_system(2 /* EfiResetShutdown */, 0, 0, 0);
	return 0;
}
