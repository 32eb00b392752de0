/*
 * The arm64 KVM userspace API that realm-run uses, written out for arm64 whatever the build host.
 *
 * The kernel's own headers describe the *build host's* architecture (kvm_regs, the exit union, the
 * vCPU features differ between x86 and arm64), so the layouts are spelt out here with fixed-width
 * types and explicit padding. Names carry a `ckvm_` prefix so that this header can be compiled next
 * to the real <linux/kvm.h> in the layout test (Tests/KVMTests/UAPILayoutTests.swift), which checks
 * every size, offset and number below against Debian's arm64 UAPI headers.
 *
 * Sources: include/uapi/linux/kvm.h and arch/arm64/include/uapi/asm/kvm.h (Linux), the CCA host
 * series' additions as listed in ../shared/reference/kvm-cca-api.md.
 */
#ifndef CKVM_H
#define CKVM_H

#include <stdint.h>
#include <stddef.h>

/* ---- ioctl encoding (asm-generic/ioctl.h, which arm64 uses) ---------------------------------- */
#define CKVM_IOC(dir, nr, size) \
  ((unsigned long)(((unsigned long)(dir) << 30) | ((unsigned long)(size) << 16) | (0xAEul << 8) | (nr)))
#define CKVM_IO(nr) CKVM_IOC(0, nr, 0)
#define CKVM_IOW(nr, size) CKVM_IOC(1, nr, size)
#define CKVM_IOR(nr, size) CKVM_IOC(2, nr, size)
#define CKVM_IOWR(nr, size) CKVM_IOC(3, nr, size)

/* ---- structures ------------------------------------------------------------------------------ */
struct ckvm_userspace_memory_region {
  uint32_t slot;
  uint32_t flags;
  uint64_t guest_phys_addr;
  uint64_t memory_size;
  uint64_t userspace_addr;
};

struct ckvm_userspace_memory_region2 {
  uint32_t slot;
  uint32_t flags;
  uint64_t guest_phys_addr;
  uint64_t memory_size;
  uint64_t userspace_addr;
  uint64_t guest_memfd_offset;
  uint32_t guest_memfd;
  uint32_t pad1;
  uint64_t pad2[14];
};

struct ckvm_create_guest_memfd {
  uint64_t size;
  uint64_t flags;
  uint64_t reserved[6];
};

struct ckvm_memory_attributes {
  uint64_t address;
  uint64_t size;
  uint64_t attributes;
  uint64_t flags;
};

struct ckvm_one_reg {
  uint64_t id;
  uint64_t addr;
};

struct ckvm_vcpu_init {
  uint32_t target;
  uint32_t features[7];
};

struct ckvm_device_attr {
  uint32_t flags;
  uint32_t group;
  uint64_t attr;
  uint64_t addr;
};

struct ckvm_create_device {
  uint32_t type;
  uint32_t fd;
  uint32_t flags;
};

struct ckvm_enable_cap {
  uint32_t cap;
  uint32_t flags;
  uint64_t args[4];
  uint8_t pad[64];
};

struct ckvm_irq_level {
  uint32_t irq;
  uint32_t level;
};

/* struct kvm_ioeventfd: a guest write KVM turns into an eventfd signal instead of an exit */
struct ckvm_ioeventfd {
  uint64_t datamatch;
  uint64_t addr;
  uint32_t len;  /* 0: a write of any width (KVM_CAP_IOEVENTFD_ANY_LENGTH) */
  int32_t fd;
  uint32_t flags;
  uint8_t pad[36];
};
#define CKVM_IOEVENTFD_FLAG_DEASSIGN (1 << 2)

/* struct kvm_irqfd: an eventfd KVM turns into an interrupt, here a level-triggered SPI (gsi: the
   SPI's number, which the vGIC's default routing maps to INTID gsi + 32) with a resample eventfd
   KVM signals when it lowers the line at the guest's EOI */
struct ckvm_irqfd {
  uint32_t fd;
  uint32_t gsi;
  uint32_t flags;
  uint32_t resamplefd;
  uint8_t pad[16];
};
#define CKVM_IRQFD_FLAG_DEASSIGN (1 << 0)
#define CKVM_IRQFD_FLAG_RESAMPLE (1 << 1)

/* arm64 struct kvm_vcpu_events */
struct ckvm_vcpu_events {
  uint8_t serror_pending;
  uint8_t serror_has_esr;
  uint8_t ext_dabt_pending;
  uint8_t pad[5];
  uint64_t serror_esr;
  uint32_t reserved[12];
};

/* struct kvm_run: the header and the exits realm-run decodes. The exit union starts at 32. */
struct ckvm_run_mmio {
  uint64_t phys_addr;
  uint8_t data[8];
  uint32_t len;
  uint8_t is_write;
  uint8_t pad[3];
};

struct ckvm_run_hypercall {
  uint64_t nr;
  uint64_t args[6];
  uint64_t ret;
  uint64_t flags;
};

struct ckvm_run_system_event {
  uint32_t type;
  uint32_t ndata;
  uint64_t data[16];
};

struct ckvm_run_memory_fault {
  uint64_t flags;
  uint64_t gpa;
  uint64_t size;
};

struct ckvm_run_internal {
  uint32_t suberror;
  uint32_t ndata;
  uint64_t data[16];
};

struct ckvm_run {
  uint8_t request_interrupt_window;
  uint8_t immediate_exit;
  uint8_t padding1[6];
  uint32_t exit_reason;
  uint8_t ready_for_interrupt_injection;
  uint8_t if_flag;
  uint16_t flags;
  uint64_t cr8;
  uint64_t apic_base;
  union {
    struct ckvm_run_mmio mmio;
    struct ckvm_run_hypercall hypercall;
    struct ckvm_run_system_event system_event;
    struct ckvm_run_memory_fault memory_fault;
    struct ckvm_run_internal internal;
    uint8_t padding[256];
  };
};

/* ---- CCA host structures (see kvm-cca-api.md §3–§5) ----------------------------------------- */
/* Generation A (series v5–v11): KVM_ENABLE_CAP sub-command arguments. */
struct ckvm_rme_config {
  uint32_t cfg;
  union {
    uint8_t rpv[64];
    uint32_t hash_algo;
    uint8_t reserved[256];
  };
};

struct ckvm_rme_populate_realm {
  uint64_t base;
  uint64_t size;
  uint32_t flags;
  uint32_t reserved[3];
};

struct ckvm_rme_init_ripas {
  uint64_t base;
  uint64_t size;
  uint64_t reserved[2];
};

/* Generation B (series v12+): KVM_ARM_RMI_POPULATE. */
struct ckvm_rmi_populate {
  uint64_t base;
  uint64_t size;
  uint64_t source_uaddr;
  uint32_t flags;
  uint32_t reserved;
};

/* KVM_ARM_VCPU_RMM_PSCI_COMPLETE / KVM_ARM_VCPU_RMI_PSCI_COMPLETE. */
struct ckvm_psci_complete {
  uint64_t target_mpidr;
  uint32_t psci_status;
  uint32_t padding[3];
};

_Static_assert(sizeof(struct ckvm_userspace_memory_region2) == 160, "memory_region2");
_Static_assert(sizeof(struct ckvm_enable_cap) == 104, "enable_cap");
_Static_assert(offsetof(struct ckvm_run, mmio) == 32, "kvm_run exit union");
_Static_assert(sizeof(struct ckvm_rme_config) == 260, "rme_config");
_Static_assert(sizeof(struct ckvm_rmi_populate) == 32, "rmi_populate");
_Static_assert(sizeof(struct ckvm_psci_complete) == 24, "psci_complete");

/* ---- ioctl numbers --------------------------------------------------------------------------- */
enum {
  CKVM_API_VERSION = 12,
};

static const unsigned long CKVM_GET_API_VERSION = CKVM_IO(0x00);
static const unsigned long CKVM_CREATE_VM = CKVM_IO(0x01);
static const unsigned long CKVM_CHECK_EXTENSION = CKVM_IO(0x03);
static const unsigned long CKVM_GET_VCPU_MMAP_SIZE = CKVM_IO(0x04);
static const unsigned long CKVM_CREATE_VCPU = CKVM_IO(0x41);
static const unsigned long CKVM_SET_USER_MEMORY_REGION = CKVM_IOW(0x46, sizeof(struct ckvm_userspace_memory_region));
static const unsigned long CKVM_SET_USER_MEMORY_REGION2 = CKVM_IOW(0x49, sizeof(struct ckvm_userspace_memory_region2));
static const unsigned long CKVM_IRQ_LINE = CKVM_IOW(0x61, sizeof(struct ckvm_irq_level));
static const unsigned long CKVM_IOEVENTFD = CKVM_IOW(0x79, sizeof(struct ckvm_ioeventfd));
static const unsigned long CKVM_IRQFD = CKVM_IOW(0x76, sizeof(struct ckvm_irqfd));
static const unsigned long CKVM_RUN = CKVM_IO(0x80);
static const unsigned long CKVM_SET_VCPU_EVENTS = CKVM_IOW(0xA0, sizeof(struct ckvm_vcpu_events));
static const unsigned long CKVM_ENABLE_CAP = CKVM_IOW(0xA3, sizeof(struct ckvm_enable_cap));
static const unsigned long CKVM_GET_ONE_REG = CKVM_IOW(0xAB, sizeof(struct ckvm_one_reg));
static const unsigned long CKVM_SET_ONE_REG = CKVM_IOW(0xAC, sizeof(struct ckvm_one_reg));
static const unsigned long CKVM_ARM_VCPU_INIT = CKVM_IOW(0xAE, sizeof(struct ckvm_vcpu_init));
static const unsigned long CKVM_ARM_PREFERRED_TARGET = CKVM_IOR(0xAF, sizeof(struct ckvm_vcpu_init));
static const unsigned long CKVM_ARM_VCPU_FINALIZE = CKVM_IOW(0xC2, sizeof(int));
static const unsigned long CKVM_SET_MEMORY_ATTRIBUTES = CKVM_IOW(0xD2, sizeof(struct ckvm_memory_attributes));
static const unsigned long CKVM_CREATE_GUEST_MEMFD = CKVM_IOWR(0xD4, sizeof(struct ckvm_create_guest_memfd));
static const unsigned long CKVM_CREATE_DEVICE = CKVM_IOWR(0xE0, sizeof(struct ckvm_create_device));
static const unsigned long CKVM_SET_DEVICE_ATTR = CKVM_IOW(0xE1, sizeof(struct ckvm_device_attr));
/* CCA host series (not in released kernel headers). */
static const unsigned long CKVM_ARM_VCPU_RMM_PSCI_COMPLETE_V5 = CKVM_IOW(0xD2, sizeof(struct ckvm_psci_complete));
static const unsigned long CKVM_ARM_VCPU_PSCI_COMPLETE = CKVM_IOW(0xD6, sizeof(struct ckvm_psci_complete));
static const unsigned long CKVM_ARM_RMI_POPULATE_V12 = CKVM_IOW(0xD7, sizeof(struct ckvm_rmi_populate));
static const unsigned long CKVM_ARM_RMI_POPULATE = CKVM_IOWR(0xD7, sizeof(struct ckvm_rmi_populate));


/* ---- capabilities ---------------------------------------------------------------------------- */
enum {
  CKVM_CAP_IRQCHIP = 0,
  CKVM_CAP_USER_MEMORY = 3,
  CKVM_CAP_ONE_REG = 70,
  CKVM_CAP_IOEVENTFD_ANY_LENGTH = 122,
  CKVM_CAP_ARM_PSCI_0_2 = 102,
  CKVM_CAP_ARM_VM_IPA_SIZE = 165,
  CKVM_CAP_ARM_INJECT_EXT_DABT = 178,
  CKVM_CAP_USER_MEMORY2 = 231,
  CKVM_CAP_MEMORY_FAULT_INFO = 232,
  CKVM_CAP_MEMORY_ATTRIBUTES = 233,
  CKVM_CAP_GUEST_MEMFD = 234,
  CKVM_CAP_VM_TYPES = 235,
  CKVM_CAP_ARM_SVE = 170,
  CKVM_CAP_ARM_PMU_V3 = 126,
};

/* ---- memory ---------------------------------------------------------------------------------- */
#define CKVM_MEM_GUEST_MEMFD (1u << 2)
#define CKVM_MEMORY_ATTRIBUTE_PRIVATE (1ull << 3)
#define CKVM_MEMORY_EXIT_FLAG_PRIVATE (1ull << 3)

/* ---- exits ----------------------------------------------------------------------------------- */
enum {
  CKVM_EXIT_UNKNOWN = 0,
  CKVM_EXIT_HYPERCALL = 3,
  CKVM_EXIT_MMIO = 6,
  CKVM_EXIT_SHUTDOWN = 8,
  CKVM_EXIT_FAIL_ENTRY = 9,
  CKVM_EXIT_INTR = 10,
  CKVM_EXIT_INTERNAL_ERROR = 17,
  CKVM_EXIT_SYSTEM_EVENT = 24,
  CKVM_EXIT_MEMORY_FAULT = 39,
};

enum {
  CKVM_SYSTEM_EVENT_SHUTDOWN = 1,
  CKVM_SYSTEM_EVENT_RESET = 2,
  CKVM_SYSTEM_EVENT_CRASH = 3,
};

#define CKVM_HYPERCALL_EXIT_SMC (1ull << 0)

/* ---- arm64 vCPU --------------------------------------------------------------------------- */
enum {
  CKVM_ARM_VCPU_POWER_OFF = 0,
  CKVM_ARM_VCPU_PSCI_0_2 = 2,
  CKVM_ARM_VCPU_PMU_V3 = 3,
  CKVM_ARM_VCPU_SVE = 4,
};

/* Register ids: KVM_REG_ARM64 | KVM_REG_SIZE_U64 | KVM_REG_ARM_CORE | (offset in kvm_regs / 4). */
#define CKVM_REG_ARM64 0x6000000000000000ull
#define CKVM_REG_SIZE_U64 0x0030000000000000ull
#define CKVM_REG_ARM_CORE (0x0010ull << 16)
#define CKVM_REG_ARM64_CORE(offset) (CKVM_REG_ARM64 | CKVM_REG_SIZE_U64 | CKVM_REG_ARM_CORE | ((offset) / 4))
/* arm64 struct kvm_regs starts with struct user_pt_regs { u64 regs[31]; u64 sp; u64 pc; u64 pstate; }. */
static inline uint64_t ckvm_core_reg_x(unsigned n) { return CKVM_REG_ARM64_CORE(n * 8); }
static const uint64_t CKVM_CORE_REG_SP = CKVM_REG_ARM64_CORE(31 * 8);
static const uint64_t CKVM_CORE_REG_PC = CKVM_REG_ARM64_CORE(32 * 8);
static const uint64_t CKVM_CORE_REG_PSTATE = CKVM_REG_ARM64_CORE(33 * 8);

/* PMCR_EL0: ARM64_SYS_REG(3, 3, 9, 12, 0); its N field (bits 15:11) is the number of event counters. */
#define CKVM_REG_PMCR_EL0 0x603000000013DCE0ull
/* ID_AA64DFR0_EL1: ARM64_SYS_REG(3, 0, 0, 5, 0); BRPs in bits 15:12, WRPs in 23:20. */
#define CKVM_REG_ID_AA64DFR0_EL1 0x603000000013C028ull

/* vCPU device attributes of the PMU (KVM_SET_DEVICE_ATTR on the vCPU fd). */
enum {
  CKVM_ARM_VCPU_PMU_V3_CTRL = 0,
  CKVM_ARM_VCPU_PMU_V3_IRQ = 0,
  CKVM_ARM_VCPU_PMU_V3_INIT = 1,
};

/* The SVE vector-length set, a 512-bit bitmap of vector quadwords (bit n-1 for VQ n). */
#define CKVM_REG_ARM64_SVE_VLS 0x606000000015FFFFull

/* KVM_IRQ_LINE encoding on arm64. */
enum {
  CKVM_ARM_IRQ_TYPE_SHIFT = 24,
  CKVM_ARM_IRQ_VCPU_SHIFT = 16,
  CKVM_ARM_IRQ_TYPE_CPU = 0,
  CKVM_ARM_IRQ_TYPE_SPI = 1,
  CKVM_ARM_IRQ_TYPE_PPI = 2,
};

/* ---- vGIC ------------------------------------------------------------------------------------ */
enum {
  CKVM_DEV_TYPE_ARM_VGIC_V3 = 7,
  CKVM_DEV_TYPE_ARM_VGIC_ITS = 8,
  CKVM_DEV_ARM_VGIC_GRP_ADDR = 0,
  CKVM_DEV_ARM_VGIC_GRP_NR_IRQS = 3,
  CKVM_DEV_ARM_VGIC_GRP_CTRL = 4,
  CKVM_DEV_ARM_VGIC_CTRL_INIT = 0,
  CKVM_VGIC_V3_ADDR_TYPE_DIST = 2,
  CKVM_VGIC_V3_ADDR_TYPE_REDIST = 3,
  CKVM_VGIC_V3_ADDR_TYPE_ITS = 4,
};

#endif
