// A small EFI application for uefi-qemu-test: checks EFI_DISK_IO_PROTOCOL on the handle it was
// loaded from (its Loaded Image's DeviceHandle, the ESP) against that handle's Block IO and the
// FAT boot sector mkfs.vfat writes, prints one "DISKIO PASS|FAIL <check>" line per check and
// "DISKIO DONE <failures>" through ConOut, and returns EFI_SUCCESS. Built like every probe
// (probe.h).
#define PROBE "DISKIO"
#include "probe.h"

typedef status (*handle_protocol_fn)(void *handle, const guid *, void **);
enum { HANDLE_PROTOCOL = 16 };
struct loaded_image { u32 revision; void *parent, *system_table, *device_handle; };
struct media { u32 media_id; u8 removable, present, logical, read_only, write_caching; u32 block_size, io_align; u64 last_block; };
struct block_io {
  u64 revision; struct media *media; void *reset;
  status (*read_blocks)(struct block_io *, u32 media_id, u64 lba, u64 size, void *buffer);
};
struct disk_io {
  u64 revision;
  status (*read_disk)(struct disk_io *, u32 media_id, u64 offset, u64 size, void *buffer);
  status (*write_disk)(struct disk_io *, u32 media_id, u64 offset, u64 size, void *buffer);
};

static void fill(u8 *p, u64 n) { for (u64 i = 0; i < n; i++) p[i] = 0xA5; }

__attribute__((section(".text.entry")))
status efi_main(void *image, struct system_table *st) {
  static const guid loaded_image_guid = { 0x5b1b31a1, 0x9562, 0x11d2, { 0x8e, 0x3f, 0x00, 0xa0, 0xc9, 0x69, 0x72, 0x3b } };
  static const guid block_io_guid = { 0x964e5b21, 0x6459, 0x11d2, { 0x8e, 0x39, 0x00, 0xa0, 0xc9, 0x69, 0x72, 0x3b } };
  static const guid disk_io_guid = { 0xce345171, 0xba0b, 0x11d2, { 0x8e, 0x4f, 0x00, 0xa0, 0xc9, 0x69, 0x72, 0x3b } };
  out = st->con_out;
  handle_protocol_fn handle_protocol = (handle_protocol_fn)st->boot->fn[HANDLE_PROTOCOL];
  struct loaded_image *li = 0; struct block_io *bio = 0; struct disk_io *dio = 0;
  if (handle_protocol(image, &loaded_image_guid, (void **)&li) || !li ||
      handle_protocol(li->device_handle, &block_io_guid, (void **)&bio) || !bio) {
    print("DISKIO FAIL ", "no Loaded Image or Block IO on its device"); return 0;
  }
  check(handle_protocol(li->device_handle, &disk_io_guid, (void **)&dio) == 0 && dio && dio->revision == 0x10000,
        "Disk IO (revision 0x10000) on the ESP's handle");
  if (!dio) return 0;
  u32 id = bio->media->media_id;
  u64 media_size = (bio->media->last_block + 1) * 512;
  u8 blocks[2048], got[1100];
  if (bio->read_blocks(bio, id, 0, sizeof blocks, blocks)) { print("DISKIO FAIL ", "Block IO read of blocks 0-3"); return 0; }

  fill(got, sizeof got);
  check(dio->read_disk(dio, id, 3, 8, got) == 0 && same(got, "mkfs.fat", 8),
        "offset 3, 8 bytes: the FAT boot sector's OEM name mkfs.fat");
  fill(got, sizeof got);
  check(dio->read_disk(dio, id, 3, 1000, got) == 0 && same(got, blocks + 3, 1000) && got[1000] == 0xA5,
        "offset 3, 1000 bytes (unaligned head and tail) as Block IO read them");
  fill(got, sizeof got);
  check(dio->read_disk(dio, id, 500, 30, got) == 0 && same(got, blocks + 500, 30) && got[30] == 0xA5,
        "offset 500, 30 bytes (across a block boundary)");
  fill(got, sizeof got);
  check(dio->read_disk(dio, id, 512, 1024, got) == 0 && same(got, blocks + 512, 1024) && got[1024] == 0xA5,
        "offset 512, 1024 bytes (whole blocks)");
  fill(got, sizeof got);
  check(dio->read_disk(dio, id, 700, 1100, got) == 0 && same(got, blocks + 700, 1100),
        "offset 700, 1100 bytes (head, a whole block, tail)");
  u8 last[512];
  fill(got, sizeof got);
  check(bio->read_blocks(bio, id, bio->media->last_block, 512, last) == 0 &&
        dio->read_disk(dio, id, media_size - 10, 10, got) == 0 && same(got, last + 502, 10),
        "the media's last 10 bytes");
  check(dio->read_disk(dio, id, 7, 0, 0) == 0, "size 0: success, even with no buffer");
  check(dio->read_disk(dio, id, 0, 16, 0) == INVALID_PARAMETER, "no buffer: EFI_INVALID_PARAMETER");
  check(dio->read_disk(dio, id + 1, 0, 16, got) == MEDIA_CHANGED, "another MediaId: EFI_MEDIA_CHANGED");
  check(dio->read_disk(dio, id, media_size - 10, 11, got) == INVALID_PARAMETER, "one byte past the end: EFI_INVALID_PARAMETER");
  check(dio->read_disk(dio, id, 0xFFFFFFFFFFFFFFF0ull, 32, got) == INVALID_PARAMETER,
        "offset + size wrapping past 2^64: EFI_INVALID_PARAMETER");
  check(dio->write_disk(dio, id, 0, 16, got) == WRITE_PROTECTED, "WriteDisk: EFI_WRITE_PROTECTED");
  char count[2];
  count[0] = (char)('0' + (failures > 9 ? 9 : failures));
  count[1] = 0;
  print("DISKIO DONE failures: ", count);
  return 0;
}
