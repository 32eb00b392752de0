// A small EFI application for uefi-qemu-test: checks the runtime services the firmware offers
// after ExitBootServices as an OS would call them, SetVirtualAddressMap included (Debian's arm64
// kernel never calls it: its stub keeps a 1:1 mapping when it has 48 VA bits). Before
// ExitBootServices it prints "RTPROBE PASS|FAIL <check>" lines through ConOut; after it, through
// QEMU virt's PL011 directly (the firmware's console is gone), then ends with "RTPROBE DONE
// failures: N" and resets the machine through the converted ResetSystem, called at its new
// virtual address: the firmware's 1 GiB of RAM is aliased 512 GiB up (a second entry in the
// firmware's level-0 table pointing at the same level-1 table), and virtual = physical + 512 GiB.
// RELOC_OFFSET/RELOC_TARGET (from the -D flags uefi-qemu-test takes from realm-fw.elf's dynamic
// relocations): one R_AARCH64_RELATIVE word of the image's GOT, as offsets from the image start,
// which SetVirtualAddressMap's re-relocation must move by the shift.
// Built like every probe (probe.h).
#define PROBE "RTPROBE"
#include "probe.h"

#define SHIFT (1ull << 39)
#define RUNTIME_ATTRIBUTE (1ull << 63)

enum { GET_TIME = 0, SVAM = 4, CONVERT_POINTER = 5, GET_VARIABLE = 6, RESET_SYSTEM = 10 };
enum { GET_MEMORY_MAP = 4, EXIT_BOOT_SERVICES = 26 };
struct descriptor { u32 type, pad; u64 physical, virtual, pages, attribute; };
typedef status (*svam_fn)(u64 size, u64 desc_size, u32 version, void *map);
typedef status (*convert_fn)(u64 debug, void **address);

static u32 crc32(const u8 *p, u64 n) {
  u32 c = 0xFFFFFFFFu;
  for (u64 i = 0; i < n; i++) {
    c ^= p[i];
    for (int k = 0; k < 8; k++) c = (c >> 1) ^ (0xEDB88320u & (0u - (c & 1)));
  }
  return ~c;
}
static int sealed(struct header *h) {
  u32 saved = h->crc; h->crc = 0;
  u32 c = crc32((const u8 *)h, h->hsize);
  h->crc = saved;
  return c == saved;
}

__attribute__((section(".text.entry")))
status efi_main(void *image, struct system_table *st) {
  static const guid rt_properties_guid = { 0xeb66918a, 0x7eef, 0x402a, { 0x84, 0x2e, 0x93, 0x1d, 0x21, 0xc3, 0x8a, 0xe9 } };
  out = st->con_out;
  struct runtime *rt = st->runtime;
  u32 mask = 0;
  for (u64 i = 0; i < st->n_tables; i++) {
    if (same(&st->tables[i].vendor, &rt_properties_guid, 16)) mask = ((u32 *)st->tables[i].table)[1];
  }
  check(mask == 0x580, "RT properties: ResetSystem, SetVirtualAddressMap, ConvertPointer (0x580)");
  u8 dummy[48];
  for (int i = 0; i < 48; i++) dummy[i] = 0;
  check(((svam_fn)rt->fn[SVAM])(48, 48, 1, dummy) == UNSUPPORTED, "SetVirtualAddressMap before ExitBootServices: EFI_UNSUPPORTED");
  void *p = rt;
  check(((convert_fn)rt->fn[CONVERT_POINTER])(0, &p) == UNSUPPORTED && p == rt,
        "ConvertPointer before SetVirtualAddressMap: EFI_UNSUPPORTED");

  // ExitBootServices with the current map key.
  u8 map[16384];
  u64 size, key, desc_size; u32 version;
  typedef status (*get_map_fn)(u64 *, void *, u64 *, u64 *, u32 *);
  typedef status (*exit_fn)(void *, u64);
  status s;
  int tries = 0;
  do {
    size = sizeof map;
    if (((get_map_fn)st->boot->fn[GET_MEMORY_MAP])(&size, map, &key, &desc_size, &version)) {
      print("RTPROBE FAIL ", "GetMemoryMap"); return 0;
    }
    s = ((exit_fn)st->boot->fn[EXIT_BOOT_SERVICES])(image, key);
  } while (s && ++tries < 4);
  if (s) { print("RTPROBE FAIL ", "ExitBootServices"); return 0; }
  exited = 1;
  print("RTPROBE ", "after ExitBootServices");
  check(((status (*)(void *, void *))rt->fn[GET_TIME])(0, 0) == UNSUPPORTED, "GetTime at runtime: EFI_UNSUPPORTED");
  u64 data_size = 8; u8 data[8]; u16 name[12];
  for (int i = 0; i < 12; i++) name[i] = (u16)"BootCurrent"[i];
  check(((status (*)(u16 *, void *, u32 *, u64 *, void *))rt->fn[GET_VARIABLE])(name, (void *)&rt_properties_guid, 0, &data_size, data)
        == UNSUPPORTED, "GetVariable at runtime: EFI_UNSUPPORTED");

  // The runtime descriptors, each moved up by SHIFT; the firmware's image is the one holding st.
  u8 vmap[4096]; u64 vsize = 0, image_start = 0;
  for (u64 off = 0; off + desc_size <= size && vsize + desc_size <= sizeof vmap; off += desc_size) {
    struct descriptor *d = (struct descriptor *)(map + off);
    if (!(d->attribute & RUNTIME_ATTRIBUTE)) continue;
    for (u64 b = 0; b < desc_size; b++) vmap[vsize + b] = map[off + b];
    ((struct descriptor *)(vmap + vsize))->virtual = d->physical + SHIFT;
    if ((u64)st >= d->physical && (u64)st < d->physical + d->pages * 4096) image_start = d->physical;
    vsize += desc_size;
  }
  check(image_start != 0, "the system table lies in a runtime descriptor");
  volatile u64 *reloc_word = (volatile u64 *)(image_start + RELOC_OFFSET);
  check(*reloc_word == image_start + RELOC_TARGET, "a GOT word holds its physical target before");
  svam_fn svam = (svam_fn)rt->fn[SVAM];
  check(svam(vsize, 39, 1, vmap) == INVALID_PARAMETER, "SetVirtualAddressMap, descriptor size 39: EFI_INVALID_PARAMETER");
  check(svam(vsize, desc_size, 2, vmap) == INVALID_PARAMETER, "SetVirtualAddressMap, descriptor version 2: EFI_INVALID_PARAMETER");
  check(svam(vsize - 1, desc_size, 1, vmap) == INVALID_PARAMETER, "SetVirtualAddressMap, a torn descriptor: EFI_INVALID_PARAMETER");
  check(svam(0, desc_size, 1, vmap) == NO_MAPPING, "SetVirtualAddressMap without the firmware's region: EFI_NO_MAPPING");
  void *old_reset = rt->fn[RESET_SYSTEM], *old_rt = rt, *old_tables = st->tables;
  check(svam(vsize, desc_size, version, vmap) == 0, "SetVirtualAddressMap: EFI_SUCCESS");

  // The alias, then everything through the virtual addresses.
  u64 *root; __asm__ volatile("mrs %0, ttbr0_el1" : "=r"(root));
  root = (u64 *)((u64)root & 0x0000fffffffff000ull);
  root[1] = root[0];
  __asm__ volatile("dsb ishst; tlbi vmalle1; dsb ish; isb" ::: "memory");
  struct runtime *vrt = st->runtime;
  check((u64)vrt == (u64)old_rt + SHIFT, "SystemTable->RuntimeServices converted");
  check((u64)st->tables == (u64)old_tables + SHIFT, "SystemTable->ConfigurationTable converted");
  check(st->boot == 0 && st->con_out == 0 && st->con_in == 0, "SystemTable boot-time fields cleared");
  check(sealed(&st->hdr), "SystemTable CRC32 recomputed");
  check(sealed(&vrt->hdr) && (u64)vrt->fn[RESET_SYSTEM] == (u64)old_reset + SHIFT,
        "RuntimeServices functions converted, CRC32 recomputed");
  check(*reloc_word == image_start + RELOC_TARGET + SHIFT, "the image re-relocated: the GOT word holds its virtual target");
  check(((svam_fn)vrt->fn[SVAM])(vsize, desc_size, version, vmap) == UNSUPPORTED, "SetVirtualAddressMap again: EFI_UNSUPPORTED");
  convert_fn convert = (convert_fn)vrt->fn[CONVERT_POINTER];
  p = (void *)(image_start + 0x10);
  check(convert(0, &p) == 0 && (u64)p == image_start + 0x10 + SHIFT, "ConvertPointer inside the runtime region");
  p = (void *)0x1000;
  check(convert(0, &p) == NOT_FOUND && (u64)p == 0x1000, "ConvertPointer outside: EFI_NOT_FOUND");
  p = 0;
  check(convert(0, &p) == INVALID_PARAMETER && convert(1, &p) == 0 && p == 0, "ConvertPointer nil: EFI_INVALID_PARAMETER, EFI_OPTIONAL_PTR: success");
  check(convert(0, 0) == INVALID_PARAMETER, "ConvertPointer without an address: EFI_INVALID_PARAMETER");
  check(((status (*)(void *, void *))vrt->fn[GET_TIME])(0, 0) == UNSUPPORTED, "GetTime at its virtual address: EFI_UNSUPPORTED");
  print("RTPROBE DONE failures: ", failures ? "some" : "0");
  print("RTPROBE ", "ResetSystem(EfiResetCold) at its virtual address");
  ((void (*)(u32, status, u64, void *))vrt->fn[RESET_SYSTEM])(0, 0, 0, 0);
  print("RTPROBE FAIL ", "ResetSystem returned");
  for (;;) {}
}
