// The smallest guest: PSCI SYSTEM_OFF through SMC (the conduit a Realm must use; KVM takes it from
// a normal VM too). realm-run loads it with --firmware; used for Realm lifecycle checks.
  .text
  .global _start
_start:
  movz x0, #0x0008
  movk x0, #0x8400, lsl #16     // PSCI_SYSTEM_OFF 0x84000008
  smc #0
  b .
