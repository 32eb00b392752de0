// The UEFI 2.10 tables the firmware hands to EFI applications (shim, GRUB, systemd-boot, the
// Linux EFI stub), laid out by the C compiler exactly as the specification declares them. The
// services themselves are Swift functions (@_cdecl "efi_*", RealmFirmware/UEFI); efi.c fills the
// tables with them and holds the few services C expresses better (the variadic ones).
#ifndef FIRMWARE_EFI_H
#define FIRMWARE_EFI_H
#include <stdint.h>
#include <stddef.h>

typedef uint64_t efi_status;
typedef void *efi_handle;
typedef struct { uint32_t d1; uint16_t d2, d3; uint8_t d4[8]; } efi_guid;

typedef struct {
  uint64_t signature;
  uint32_t revision, header_size, crc32, reserved;
} efi_table_header;

typedef struct {
  efi_guid vendor_guid;
  void *vendor_table;
} efi_configuration_table;

typedef struct efi_simple_text_output efi_simple_text_output;
typedef struct {
  int32_t max_mode, mode, attribute, cursor_column, cursor_row;
  uint8_t cursor_visible;
} efi_simple_text_output_mode;
struct efi_simple_text_output {
  efi_status (*reset)(efi_simple_text_output *, uint8_t extended);
  efi_status (*output_string)(efi_simple_text_output *, const uint16_t *string);
  efi_status (*test_string)(efi_simple_text_output *, const uint16_t *string);
  efi_status (*query_mode)(efi_simple_text_output *, uint64_t mode, uint64_t *columns, uint64_t *rows);
  efi_status (*set_mode)(efi_simple_text_output *, uint64_t mode);
  efi_status (*set_attribute)(efi_simple_text_output *, uint64_t attribute);
  efi_status (*clear_screen)(efi_simple_text_output *);
  efi_status (*set_cursor_position)(efi_simple_text_output *, uint64_t column, uint64_t row);
  efi_status (*enable_cursor)(efi_simple_text_output *, uint8_t visible);
  efi_simple_text_output_mode *mode;
};

typedef struct efi_simple_text_input efi_simple_text_input;
typedef struct { uint16_t scan_code, unicode_char; } efi_input_key;
struct efi_simple_text_input {
  efi_status (*reset)(efi_simple_text_input *, uint8_t extended);
  efi_status (*read_key_stroke)(efi_simple_text_input *, efi_input_key *key);
  void *wait_for_key;
};

typedef struct {
  efi_table_header hdr;
  void *functions[14];  // GetTime … QueryVariableInfo, in the specification's order
} efi_runtime_services;

typedef struct {
  efi_table_header hdr;
  void *functions[44];  // RaiseTPL … CreateEventEx, in the specification's order
} efi_boot_services;

typedef struct {
  efi_table_header hdr;
  uint16_t *firmware_vendor;
  uint32_t firmware_revision;
  efi_handle console_in_handle;
  efi_simple_text_input *con_in;
  efi_handle console_out_handle;
  efi_simple_text_output *con_out;
  efi_handle standard_error_handle;
  efi_simple_text_output *std_err;
  efi_runtime_services *runtime_services;
  efi_boot_services *boot_services;
  uint64_t number_of_table_entries;
  efi_configuration_table *configuration_table;
} efi_system_table;

typedef struct {
  uint32_t revision;
  efi_handle parent_handle;
  efi_system_table *system_table;
  efi_handle device_handle;
  void *file_path;
  void *reserved;
  uint32_t load_options_size;
  void *load_options;
  void *image_base;
  uint64_t image_size;
  uint32_t image_code_type, image_data_type;
  efi_status (*unload)(efi_handle);
} efi_loaded_image;

/// EFI_FILE_PROTOCOL (revision 2) and the firmware's instance of it: the protocol, then which
/// open file the firmware's table says it is.
typedef struct {
  uint64_t revision;
  void *open, *close, *delete_, *read, *write, *get_position, *set_position, *get_info, *set_info, *flush;
  void *open_ex, *read_ex, *write_ex, *flush_ex;
  uint64_t id;
} fw_efi_file;
/// EFI_SIMPLE_FILE_SYSTEM_PROTOCOL and the volume it opens.
typedef struct {
  uint64_t revision;
  void *open_volume;
  uint64_t id;
} fw_efi_simple_file_system;
typedef struct {
  uint32_t media_id;
  uint8_t removable_media, media_present, logical_partition, read_only, write_caching;
  uint32_t block_size, io_align;
  uint64_t last_block;
  uint64_t lowest_aligned_lba;
  uint32_t logical_blocks_per_physical_block, optimal_transfer_length_granularity;
} efi_block_io_media;
/// EFI_BLOCK_IO_PROTOCOL (revision 3), with its media and which block device it is.
typedef struct {
  uint64_t revision;
  efi_block_io_media *media;
  void *reset, *read_blocks, *write_blocks, *flush_blocks;
  uint64_t id;
  efi_block_io_media media_storage;
} fw_efi_block_io;
/// EFI_DISK_IO_PROTOCOL (revision 1), over the Block IO device `id` of the same handle.
typedef struct {
  uint64_t revision;
  void *read_disk, *write_disk;
  uint64_t id;
} fw_efi_disk_io;
/// EFI_LOAD_FILE2_PROTOCOL: the initrd of the entry the firmware boots through the kernel's EFI
/// stub, on the handle whose device path is VenMedia(LINUX_EFI_INITRD_MEDIA_GUID).
typedef struct { void *load_file; } efi_load_file2_protocol;
extern efi_load_file2_protocol fw_efi_initrd_load_file2;
/// EFI_RNG_PROTOCOL, installed when the CPU has RNDR.
typedef struct { void *get_info, *get_rng; } efi_rng_protocol;
extern efi_rng_protocol fw_efi_rng;

/// Fill an instance's function pointers (efi.c) and its id.
void fw_efi_file_init(fw_efi_file *file, uint64_t id);
void fw_efi_simple_file_system_init(fw_efi_simple_file_system *fs, uint64_t id);
void fw_efi_block_io_init(fw_efi_block_io *block_io, uint64_t id);
void fw_efi_disk_io_init(fw_efi_disk_io *disk_io, uint64_t id);

/// The tables (efi.c). Swift fills the dynamic fields and the header CRCs.
extern efi_system_table fw_efi_system_table;
extern efi_boot_services fw_efi_boot_services;
extern efi_runtime_services fw_efi_runtime_services;
extern efi_simple_text_output fw_efi_con_out;
extern efi_simple_text_output_mode fw_efi_con_out_mode;
extern efi_simple_text_input fw_efi_con_in;
enum { FW_EFI_CONFIGURATION_TABLES = 32 };
/// The configuration table array (the firmware image stays reserved after ExitBootServices, so
/// the kernel can read it there), and the EFI_RT_PROPERTIES_TABLE it lists.
extern efi_configuration_table fw_efi_configuration_tables[FW_EFI_CONFIGURATION_TABLES];
typedef struct { uint16_t version, length; uint32_t runtime_services_supported; } efi_rt_properties_table;
extern efi_rt_properties_table fw_efi_rt_properties;
/// The console's character output (console.c).
int putchar(int c);
/// The unload function every loaded image's protocol points at.
efi_status efi_unload_image(efi_handle image);

/// The runtime services (efi.c), which the OS calls after ExitBootServices.
efi_status efi_set_virtual_address_map(uint64_t map_size, uint64_t descriptor_size, uint32_t version, void *map);
efi_status efi_convert_pointer(uint64_t debug_disposition, void **address);
void efi_reset_system(uint32_t type, efi_status status, uint64_t size, void *data);
/// ExitBootServices succeeded: the runtime services table keeps ResetSystem,
/// SetVirtualAddressMap and ConvertPointer; the others answer EFI_UNSUPPORTED (the caller
/// reseals the table's CRC). SetVirtualAddressMap is accepted from now on, once.
void fw_efi_runtime_begin(void);
/// SetVirtualAddressMap's mapping of the firmware's runtime region, for ConvertPointer.
void fw_efi_runtime_set_mapping(uint64_t start, uint64_t end, uint64_t shift);
/// Re-applies the image's R_AARCH64_RELATIVE relocations for the image seen `shift` bytes away
/// (efi_call.S); words changed since start-up (pointers the firmware set or converted itself)
/// are left alone. Touches no relocated pointer: SetVirtualAddressMap's last step.
void fw_efi_relocate(uint64_t shift);

/// Calls an image's entry point (x0 = handle, x1 = system table) so that Exit can return to
/// here from any depth: returns the status the entry returned or Exit passed.
efi_status fw_efi_start_image(uint64_t entry, efi_handle handle, efi_system_table *table, uint64_t *context);
/// Exit: unwinds to the fw_efi_start_image call that saved `context`, returning `status`.
__attribute__((noreturn)) void fw_efi_exit_to(uint64_t *context, efi_status status);
/// Size of the `context` buffer fw_efi_start_image saves callee-saved state into (uint64_ts).
enum { FW_EFI_CONTEXT_WORDS = 22 };

/// Cleans the D-cache and invalidates the I-cache over [base, base+size): copied code runs.
void fw_sync_icache(uint64_t base, uint64_t size);

#endif
