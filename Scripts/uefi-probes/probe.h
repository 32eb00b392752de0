// What the probe applications of uefi-qemu-test share: the UEFI types they use, laid out as the
// specification declares them, and their output. Each probe defines PROBE (its line prefix)
// before including this, prints "PROBE PASS|FAIL <check>" lines through check(), and is built
// freestanding into one flat position-independent blob (no relocations, no data pointers) that
// harness.sh's tiny_efi_app_blob wraps as a PE file.
typedef unsigned long long u64;
typedef unsigned int u32;
typedef unsigned short u16;
typedef unsigned char u8;
typedef u64 status;
typedef struct { u32 d1; u16 d2, d3; u8 d4[8]; } guid;

#define ERR(n) (0x8000000000000000ull | (n))
#define INVALID_PARAMETER ERR(2)
#define UNSUPPORTED ERR(3)
#define WRITE_PROTECTED ERR(8)
#define MEDIA_CHANGED ERR(13)
#define NOT_FOUND ERR(14)
#define NO_MAPPING ERR(17)

struct con_out { status (*reset)(void *, u8); status (*output_string)(struct con_out *, const u16 *); };
struct header { u64 sig; u32 rev, hsize, crc, reserved; };
struct runtime { struct header hdr; void *fn[14]; };
struct config { guid vendor; void *table; };
struct system_table {
  struct header hdr;
  void *vendor; u32 vendor_rev; void *con_in_handle, *con_in, *con_out_handle;
  struct con_out *con_out; void *stderr_handle, *std_err; struct runtime *runtime;
  struct { struct header hdr; void *fn[44]; } *boot;
  u64 n_tables; struct config *tables;
};

static struct con_out *out;
static int failures;
/// Set once the probe has called ExitBootServices: ConOut is gone, lines go to QEMU virt's PL011.
static int exited;

static void print(const char *a, const char *b) {
  if (exited) {
    volatile u32 *uart = (volatile u32 *)0x09000000;
    while (*a) *uart = (u8)*a++;
    while (*b) *uart = (u8)*b++;
    *uart = '\r'; *uart = '\n';
    return;
  }
  u16 line[96]; int n = 0;
  while (*a && n < 80) line[n++] = (u8)*a++;
  while (*b && n < 92) line[n++] = (u8)*b++;
  line[n++] = '\r'; line[n++] = '\n'; line[n] = 0;
  out->output_string(out, line);
}
static void check(int ok, const char *name) {
  print(ok ? PROBE " PASS " : PROBE " FAIL ", name);
  if (!ok) failures++;
}
static int same(const void *a, const void *b, u64 n) {
  const u8 *x = a, *y = b;
  for (u64 i = 0; i < n; i++) if (x[i] != y[i]) return 0;
  return 1;
}
