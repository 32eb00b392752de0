// Entry point of the realm firmware.
// A 64-byte arm64 Image header lets QEMU `-kernel` and realm-run `--firmware` load the raw
// binary like a Linux Image (x0 = DTB). The code drops from EL2 to EL1, enables FP/SIMD,
// applies its own R_AARCH64_RELATIVE relocations (so any 2 MiB-aligned load address works),
// clears BSS, sets the stack, builds an identity map and turns the MMU on, then calls Swift.

    .section .text.boot, "ax"
    .globl _start
_start:
    b       entry                       // code0
    .long   0                           // code1
    .quad   0x80000                     // text_offset
    .quad   __image_size                // image_size (includes BSS, stack, heap)
    .quad   0xa                         // flags: LE, 4K pages, anywhere in RAM
    .quad   0, 0, 0                     // res2..res4
    .ascii  "ARM\x64"                   // magic 0x644d5241
    .long   0                           // res5

entry:
    mov     x19, x0                     // DTB
    mrs     x20, cntvct_el0             // boot timestamp
    msr     daifset, #0xf
    mrs     x0, CurrentEL
    lsr     x0, x0, #2
    cmp     x0, #2
    b.ne    at_el1
    // EL2 -> EL1, leaving EL2 transparent to the OS (as Linux's init_el2 does for itself).
    mov     x0, #(1 << 31)              // HCR_EL2.RW: EL1 is AArch64
    orr     x0, x0, #(3 << 40)          // APK | API: no pointer-authentication traps
    msr     hcr_el2, x0
    mrs     x0, id_aa64mmfr1_el1        // FEAT_HCX: enable the EL1 registers HCRX_EL2 gates
    ubfx    x0, x0, #40, #4
    cbz     x0, 6f
    mov     x0, #((1 << 14) | (1 << 15) | (1 << 11))   // TCR2En | SCTLR2En | MSCEn
    orr     x0, x0, #(1 << 22)          // GCSEn
    msr     S3_4_C1_C2_2, x0            // HCRX_EL2
6:
    mrs     x0, id_aa64mmfr0_el1        // FEAT_FGT: the "n" trap bits trap when 0, so set them
    ubfx    x0, x0, #56, #4
    cbz     x0, 7f
    mov     x0, #0xfff4
    lsl     x0, x0, #48                 // nAMAIR2..nGCS_EL0, nACCDATA_EL1 (bits 63:52, 50)
    msr     S3_4_C1_C1_4, x0            // HFGRTR_EL2
    msr     S3_4_C1_C1_5, x0            // HFGWTR_EL2
    msr     S3_4_C1_C1_6, xzr           // HFGITR_EL2
    msr     S3_4_C3_C1_4, xzr           // HDFGRTR_EL2
    msr     S3_4_C3_C1_5, xzr           // HDFGWTR_EL2
7:
    mrs     x0, midr_el1                // EL1 reads of MIDR/MPIDR return VPIDR/VMPIDR_EL2
    msr     vpidr_el2, x0
    mrs     x0, mpidr_el1
    msr     vmpidr_el2, x0
    msr     hstr_el2, xzr
    msr     vttbr_el2, xzr
    mrs     x0, pmcr_el0                // MDCR_EL2.HPMN = PMCR_EL0.N: no PMU/debug traps
    ubfx    x0, x0, #11, #5
    msr     mdcr_el2, x0
    mrs     x0, id_aa64pfr0_el1         // GICv3 system registers: let EL1 use them
    ubfx    x0, x0, #24, #4
    cbz     x0, 5f
    mrs     x0, S3_4_C12_C9_5           // ICC_SRE_EL2
    orr     x0, x0, #0xf                // SRE | DFB | DIB | Enable
    msr     S3_4_C12_C9_5, x0
    isb
    msr     S3_4_C12_C11_0, xzr         // ICH_HCR_EL2
5:
    mov     x0, #3                      // EL1PCTEN | EL1PCEN
    msr     cnthctl_el2, x0
    msr     cntvoff_el2, xzr
    mov     x0, #0x22ff                 // CPTR_EL2 (nVHE): RES1 bits only, no FP/SVE/SME traps
    msr     cptr_el2, x0
    ldr     x0, =0x30d00800             // SCTLR_EL1 RES1 bits, MMU off
    msr     sctlr_el1, x0
    mov     x0, #0x3c5                  // EL1h, DAIF masked
    msr     spsr_el2, x0
    adr     x0, at_el1
    msr     elr_el2, x0
    eret
at_el1:
    mov     x0, #(3 << 20)              // CPACR_EL1.FPEN = 0b11
    msr     cpacr_el1, x0
    isb
    adr     x0, vectors
    msr     vbar_el1, x0

    // Self-relocation: add (load address - link address) to every RELATIVE entry.
    adr     x0, _start
    ldr     x1, =__link_base            // link-time address of _start (absolute symbol)
    adrp    x2, __rela_start
    add     x2, x2, :lo12:__rela_start
    adrp    x3, __rela_end
    add     x3, x3, :lo12:__rela_end
    sub     x4, x0, x1                  // delta (literal pool is not relocated yet: link address)
1:  cmp     x2, x3
    b.hs    2f
    ldp     x5, x6, [x2], #24           // r_offset, r_info
    ldur    x7, [x2, #-8]               // r_addend
    cmp     w6, #1027                   // R_AARCH64_RELATIVE
    b.ne    1b
    add     x5, x5, x4
    add     x7, x7, x4
    str     x7, [x5]
    b       1b
2:
    // Clear BSS (16-byte aligned bounds from the linker script).
    adrp    x0, __bss_start
    add     x0, x0, :lo12:__bss_start
    adrp    x1, __bss_end
    add     x1, x1, :lo12:__bss_end
3:  cmp     x0, x1
    b.hs    4f
    stp     xzr, xzr, [x0], #16
    b       3b
4:
    adrp    x0, __stack_top
    add     x0, x0, :lo12:__stack_top
    mov     sp, x0
    adrp    x0, fw_boot_counter
    str     x20, [x0, :lo12:fw_boot_counter]

    adr     x0, _start                  // image start
    adrp    x1, __heap_end
    add     x1, x1, :lo12:__heap_end    // image end
    bl      fw_mmu_enable_early

    mov     x0, x19
    bl      firmware_main
    b       fw_halt

    .globl fw_halt
fw_halt:
    wfi
    b       fw_halt

// Exception vectors: every entry saves x0-x30 and calls fw_exception(kind, frame).
    .macro vector kind
    .balign 0x80
    sub     sp, sp, #256
    stp     x0, x1, [sp, #0]
    stp     x2, x3, [sp, #16]
    stp     x29, x30, [sp, #232]
    mov     x0, #\kind
    mov     x1, sp
    b       exception_common
    .endm

    .balign 0x800
vectors:
    vector 0
    vector 1
    vector 2
    vector 3
    vector 4
    vector 5
    vector 6
    vector 7
    vector 8
    vector 9
    vector 10
    vector 11
    vector 12
    vector 13
    vector 14
    vector 15

exception_common:
    bl      fw_exception
    b       fw_halt

// void fw_enter_kernel(uint64_t entry, uint64_t dtb): MMU and D-cache off, then jump.
// The caller has cleaned all data the kernel needs to the point of coherency.
    .globl fw_enter_kernel
fw_enter_kernel:
    mov     x19, x0
    mov     x20, x1
    mrs     x2, sctlr_el1
    bic     x2, x2, #1                  // M
    bic     x2, x2, #(1 << 2)           // C
    msr     sctlr_el1, x2
    isb
    ic      iallu
    tlbi    vmalle1
    dsb     sy
    isb
    mov     x0, x20
    mov     x1, xzr
    mov     x2, xzr
    mov     x3, xzr
    br      x19
