// SHA-256 block compression with the ARMv8 SHA-256 instructions (FEAT_SHA256), for the firmware's
// measured boot: hashing a 50 MB kernel in plain Swift took about 12 s in a Realm under TCG,
// where each of these instructions is one helper call. The only file built with SIMD registers
// (build-firmware: *_simd.c); the caller checks ID_AA64ISAR0_EL1.SHA2 first.
#include <arm_neon.h>
#include "FirmwareSupport.h"

void fw_sha256_blocks(uint32_t *state, const void *data, size_t blocks, const uint32_t *k) {
  uint32x4_t abcd = vld1q_u32(state), efgh = vld1q_u32(state + 4);
  const uint8_t *p = data;
  for (size_t b = 0; b < blocks; b++, p += 64) {
    uint32x4_t m[4];
    for (int i = 0; i < 4; i++) m[i] = vreinterpretq_u32_u8(vrev32q_u8(vld1q_u8(p + 16 * i)));
    uint32x4_t abcd0 = abcd, efgh0 = efgh;
    for (int r = 0; r < 16; r++) {  // four rounds each
      uint32x4_t w = vaddq_u32(m[r & 3], vld1q_u32(k + 4 * r));
      uint32x4_t before = abcd;
      abcd = vsha256hq_u32(abcd, efgh, w);
      efgh = vsha256h2q_u32(efgh, before, w);
      if (r < 12) {  // the schedule's next four words replace the oldest four
        m[r & 3] = vsha256su1q_u32(vsha256su0q_u32(m[r & 3], m[(r + 1) & 3]), m[(r + 2) & 3], m[(r + 3) & 3]);
      }
    }
    abcd = vaddq_u32(abcd, abcd0);
    efgh = vaddq_u32(efgh, efgh0);
  }
  vst1q_u32(state, abcd);
  vst1q_u32(state + 4, efgh);
}
