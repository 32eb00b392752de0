// Reads the Realm's own initial measurement and prints it on the UART, then powers off: the check
// that `realm-run measure` predicts what the RMM really measured. Loaded with
// `realm-run --firmware rim-probe.bin` (at the start of RAM, 0x8000_0000).
//
//   RSI_REALM_CONFIG (0xC4000196, x1 = a 4 KiB buffer) gives ipa_width and hash_algo; the UART at
//   0x0100_0000 is written through the unprotected alias, bit (ipa_width - 1) (SHARED_BIT, 32 by
//   default, if the call fails). RSI_MEASUREMENT_READ (0xC4000192, x1 = 0) returns the RIM in
//   x1..x8, byte 0 in the low byte of x1. Output, hex:
//
//     RIM_PROBE ipa=21 algo=00 config=00 read=00
//     RIM=<64 bytes: the 32-byte SHA-256 value and 32 zero bytes, or a 64-byte SHA-512 value>
//
// then PSCI SYSTEM_OFF (0x84000008). SMCCC keeps x18-x30 across the calls; they hold the state.
// Built by Scripts/build-payloads with the other payloads; with -DIMAGE_HEADER it starts with an
// arm64 Image header, so that `realm-run --kernel` boots it the way it boots Linux (rim-probe-image.bin).
#ifndef SHARED_BIT
#define SHARED_BIT 32
#endif
  .text
  .global _start
#ifdef IMAGE_HEADER
image:                          // Documentation/arch/arm64/booting.rst
  b _start                      // code0
  .long 0                       // code1
  .quad 0                       // text_offset
  .quad image_end - image       // image_size
  .quad 0xA                     // flags: little-endian, 4 KiB pages, anywhere in RAM
  .quad 0, 0, 0
  .ascii "ARM\x64"               // magic
  .long 0
#endif
_start:
  adr x19, config
  movz x0, #0x0196
  movk x0, #0xC400, lsl #16     // RSI_REALM_CONFIG
  mov x1, x19
  smc #0
  mov x22, x0                   // its status
  mov x9, #1
  cbnz x0, 1f
  ldr x10, [x19]                // ipa_width
  sub x10, x10, #1
  lsl x9, x9, x10
  b 2f
1:
  lsl x9, x9, #SHARED_BIT
2:
  movz x20, #0x0100, lsl #16    // the UART, 0x0100_0000 ...
  orr x20, x20, x9              // ... through the unprotected alias

  movz x0, #0x0192
  movk x0, #0xC400, lsl #16     // RSI_MEASUREMENT_READ
  mov x1, #0                    // index 0: the RIM
  smc #0
  mov x23, x0
  adr x21, rim
  stp x1, x2, [x21]
  stp x3, x4, [x21, #16]
  stp x5, x6, [x21, #32]
  stp x7, x8, [x21, #48]

  adr x2, banner
  bl puts
  ldr x0, [x19]                 // ipa_width (0 if the config call failed)
  cbz x22, 3f
  mov x0, #0
3:
  bl puthex8
  adr x2, algo_label
  bl puts
  ldrb w0, [x19, #8]            // hash_algo: 0 SHA-256, 1 SHA-512
  bl puthex8
  adr x2, config_label
  bl puts
  mov x0, x22
  bl puthex8
  adr x2, read_label
  bl puts
  mov x0, x23
  bl puthex8
  adr x2, rim_label
  bl puts
  mov x24, #0
4:
  ldrb w0, [x21, x24]
  bl puthex8
  add x24, x24, #1
  cmp x24, #64
  b.lo 4b
  mov w0, #'\n'
  strb w0, [x20]

  movz x0, #0x0008
  movk x0, #0x8400, lsl #16     // PSCI_SYSTEM_OFF
  smc #0
  b .

#include "uart.inc"

  .balign 8
banner:       .asciz "RIM_PROBE ipa="
algo_label:   .asciz " algo="
config_label: .asciz " config="
read_label:   .asciz " read="
rim_label:    .asciz "\nRIM="
  .balign 64
rim:          .skip 64
  .balign 4096
config:       .skip 4096        // RsiRealmConfig
image_end:
