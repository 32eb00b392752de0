// The UEFI tables (efi.h), filled with the Swift services (@_cdecl "efi_*", RealmFirmware/UEFI)
// in the specification's order, and the services C expresses better: the variadic
// Install/UninstallMultipleProtocolInterfaces, and the runtime services the OS calls after
// ExitBootServices (ResetSystem, SetVirtualAddressMap, ConvertPointer).
#include <stdarg.h>
#include "efi.h"
#include "FirmwareSupport.h"

#define EFI_UNSUPPORTED 0x8000000000000003ull
#define EFI_INVALID_PARAMETER 0x8000000000000002ull
#define EFI_NOT_FOUND 0x800000000000000Eull
#define SERVICE(name) extern void name(void);
// Boot services.
SERVICE(efi_raise_tpl) SERVICE(efi_restore_tpl)
SERVICE(efi_allocate_pages) SERVICE(efi_free_pages) SERVICE(efi_get_memory_map)
SERVICE(efi_allocate_pool) SERVICE(efi_free_pool)
SERVICE(efi_create_event) SERVICE(efi_set_timer) SERVICE(efi_wait_for_event) SERVICE(efi_signal_event)
SERVICE(efi_close_event) SERVICE(efi_check_event)
SERVICE(efi_install_protocol_interface) SERVICE(efi_reinstall_protocol_interface)
SERVICE(efi_uninstall_protocol_interface) SERVICE(efi_handle_protocol) SERVICE(efi_register_protocol_notify)
SERVICE(efi_locate_handle) SERVICE(efi_locate_device_path) SERVICE(efi_install_configuration_table)
SERVICE(efi_load_image) SERVICE(efi_start_image) SERVICE(efi_exit) SERVICE(efi_exit_boot_services)
SERVICE(efi_get_next_monotonic_count) SERVICE(efi_stall) SERVICE(efi_set_watchdog_timer)
SERVICE(efi_connect_controller) SERVICE(efi_disconnect_controller)
SERVICE(efi_open_protocol) SERVICE(efi_close_protocol) SERVICE(efi_open_protocol_information)
SERVICE(efi_protocols_per_handle) SERVICE(efi_locate_handle_buffer) SERVICE(efi_locate_protocol)
SERVICE(efi_calculate_crc32) SERVICE(efi_copy_mem) SERVICE(efi_set_mem) SERVICE(efi_create_event_ex)
// Runtime services.
SERVICE(efi_get_time) SERVICE(efi_set_time) SERVICE(efi_get_wakeup_time) SERVICE(efi_set_wakeup_time)
SERVICE(efi_get_variable)
SERVICE(efi_get_next_variable_name) SERVICE(efi_set_variable) SERVICE(efi_get_next_high_monotonic_count)
SERVICE(efi_update_capsule) SERVICE(efi_query_capsule_capabilities) SERVICE(efi_query_variable_info)
// Console.
SERVICE(efi_con_out_reset) SERVICE(efi_con_out_output_string) SERVICE(efi_con_out_test_string)
SERVICE(efi_con_out_query_mode) SERVICE(efi_con_out_set_mode) SERVICE(efi_con_out_set_attribute)
SERVICE(efi_con_out_clear_screen) SERVICE(efi_con_out_set_cursor_position) SERVICE(efi_con_out_enable_cursor)
SERVICE(efi_con_in_reset) SERVICE(efi_con_in_read_key_stroke)
// Files, file systems and block devices.
SERVICE(efi_file_open) SERVICE(efi_file_close) SERVICE(efi_file_delete) SERVICE(efi_file_read)
SERVICE(efi_file_write) SERVICE(efi_file_get_position) SERVICE(efi_file_set_position) SERVICE(efi_file_get_info)
SERVICE(efi_file_set_info) SERVICE(efi_file_flush) SERVICE(efi_file_open_ex) SERVICE(efi_file_read_ex)
SERVICE(efi_file_write_ex) SERVICE(efi_file_flush_ex) SERVICE(efi_open_volume)
SERVICE(efi_block_io_reset) SERVICE(efi_block_io_read_blocks) SERVICE(efi_block_io_write_blocks)
SERVICE(efi_block_io_flush_blocks)
SERVICE(efi_disk_io_read_disk) SERVICE(efi_disk_io_write_disk)
SERVICE(efi_initrd_load_file)
SERVICE(efi_rng_get_info) SERVICE(efi_rng_get_rng)

efi_rng_protocol fw_efi_rng = { efi_rng_get_info, efi_rng_get_rng };
efi_load_file2_protocol fw_efi_initrd_load_file2 = { efi_initrd_load_file };

void fw_efi_file_init(fw_efi_file *f, uint64_t id) {
  *f = (fw_efi_file){ 0x20000, efi_file_open, efi_file_close, efi_file_delete, efi_file_read, efi_file_write,
                      efi_file_get_position, efi_file_set_position, efi_file_get_info, efi_file_set_info,
                      efi_file_flush, efi_file_open_ex, efi_file_read_ex, efi_file_write_ex, efi_file_flush_ex, id };
}
void fw_efi_simple_file_system_init(fw_efi_simple_file_system *fs, uint64_t id) {
  *fs = (fw_efi_simple_file_system){ 0x10000, efi_open_volume, id };
}
void fw_efi_block_io_init(fw_efi_block_io *b, uint64_t id) {
  *b = (fw_efi_block_io){ 0x20031, &b->media_storage, efi_block_io_reset, efi_block_io_read_blocks,
                          efi_block_io_write_blocks, efi_block_io_flush_blocks, id, {0} };
}

void fw_efi_disk_io_init(fw_efi_disk_io *d, uint64_t id) {
  *d = (fw_efi_disk_io){ 0x10000, efi_disk_io_read_disk, efi_disk_io_write_disk, id };
}

/// Installs the protocols one (GUID, interface) pair at a time through Swift; all or none.
extern efi_status efi_install_protocols(efi_handle *handle, uint64_t count, efi_guid **guids, void **interfaces);
extern efi_status efi_uninstall_protocols(efi_handle handle, uint64_t count, efi_guid **guids, void **interfaces);
enum { MAX_PAIRS = 16 };

static efi_status collect(va_list ap, efi_guid **guids, void **interfaces, uint64_t *count) {
  for (*count = 0;; (*count)++) {
    efi_guid *g = va_arg(ap, efi_guid *);
    if (!g) return 0;
    if (*count == MAX_PAIRS) return EFI_INVALID_PARAMETER;
    guids[*count] = g;
    interfaces[*count] = va_arg(ap, void *);
  }
}

efi_status efi_install_multiple_protocol_interfaces(efi_handle *handle, ...) {
  efi_guid *guids[MAX_PAIRS]; void *interfaces[MAX_PAIRS]; uint64_t count;
  va_list ap; va_start(ap, handle);
  efi_status s = collect(ap, guids, interfaces, &count);
  va_end(ap);
  return s ? s : efi_install_protocols(handle, count, guids, interfaces);
}

efi_status efi_uninstall_multiple_protocol_interfaces(efi_handle handle, ...) {
  efi_guid *guids[MAX_PAIRS]; void *interfaces[MAX_PAIRS]; uint64_t count;
  va_list ap; va_start(ap, handle);
  efi_status s = collect(ap, guids, interfaces, &count);
  va_end(ap);
  return s ? s : efi_uninstall_protocols(handle, count, guids, interfaces);
}

efi_boot_services fw_efi_boot_services = {
  .hdr = { 0x56524553544f4f42ull /* "BOOTSERV" */, (2 << 16) | 100, sizeof(efi_boot_services), 0, 0 },
  .functions = {
    efi_raise_tpl, efi_restore_tpl,
    efi_allocate_pages, efi_free_pages, efi_get_memory_map, efi_allocate_pool, efi_free_pool,
    efi_create_event, efi_set_timer, efi_wait_for_event, efi_signal_event, efi_close_event, efi_check_event,
    efi_install_protocol_interface, efi_reinstall_protocol_interface, efi_uninstall_protocol_interface,
    efi_handle_protocol, 0 /* Reserved */, efi_register_protocol_notify, efi_locate_handle,
    efi_locate_device_path, efi_install_configuration_table,
    efi_load_image, efi_start_image, efi_exit, efi_unload_image, efi_exit_boot_services,
    efi_get_next_monotonic_count, efi_stall, efi_set_watchdog_timer,
    efi_connect_controller, efi_disconnect_controller,
    efi_open_protocol, efi_close_protocol, efi_open_protocol_information,
    efi_protocols_per_handle, efi_locate_handle_buffer, efi_locate_protocol,
    efi_install_multiple_protocol_interfaces, efi_uninstall_multiple_protocol_interfaces,
    efi_calculate_crc32, efi_copy_mem, efi_set_mem, efi_create_event_ex,
  },
};

// MARK: Runtime services after ExitBootServices.
// The OS keeps the firmware image mapped (runtime memory) and nothing else of it: its stack and
// heap, where Swift's objects live, are boot-services memory the OS takes back, and the UART is
// not in the OS's runtime mapping (in a Realm it is the shared alias). So what runs after
// ExitBootServices is this C, which touches only the image: its statics (PC-relative), PSCI
// through the saved conduit, and SetVirtualAddressMap's one Swift step, which runs while the
// firmware's identity map is still the one in use.

/// 0 boot services, 1 after ExitBootServices, 2 after SetVirtualAddressMap.
static uint32_t runtime_phase;
/// The firmware's runtime region [start, end) and what SetVirtualAddressMap adds to it.
static uint64_t runtime_start, runtime_end, runtime_shift;

/// GetTime, the variable services and the rest after ExitBootServices: the variable store
/// lived in the heap the OS has reclaimed.
static efi_status efi_rt_unsupported(void) { return EFI_UNSUPPORTED; }

void efi_reset_system(uint32_t type, efi_status status, uint64_t size, void *data) {
  (void)status; (void)size; (void)data;
  // EfiResetShutdown (2) powers off; cold, warm and platform-specific resets reset.
  if (type == 2) fw_system_off();
  fw_system_reset();
}

/// SetVirtualAddressMap's checks and conversions (Swift, RealmFirmware/UEFI): returns a status
/// and, on success, the shift (virtual - physical) of the firmware's runtime region.
extern efi_status efi_prepare_virtual_address_map(uint64_t map_size, uint64_t descriptor_size, uint32_t version,
                                                  const void *map, uint64_t *shift);

efi_status efi_set_virtual_address_map(uint64_t map_size, uint64_t descriptor_size, uint32_t version, void *map) {
  // Once, after ExitBootServices: afterwards the code runs at addresses only the OS maps.
  if (runtime_phase != 1) return EFI_UNSUPPORTED;
  uint64_t shift = 0;
  efi_status status = efi_prepare_virtual_address_map(map_size, descriptor_size, version, map, &shift);
  if (status) return status;
  runtime_phase = 2;
  // Last: from here on, a pointer the image loads is a virtual address, which the identity map
  // this call runs on does not map.
  fw_efi_relocate(shift);
  return 0;
}

efi_status efi_convert_pointer(uint64_t debug_disposition, void **address) {
  if (!runtime_end) return EFI_UNSUPPORTED;
  if (!address) return EFI_INVALID_PARAMETER;
  uint64_t a = (uint64_t)(uintptr_t)*address;
  if (!a) return (debug_disposition & 1) ? 0 : EFI_INVALID_PARAMETER;  // EFI_OPTIONAL_PTR
  if (a < runtime_start || a >= runtime_end) return EFI_NOT_FOUND;
  *address = (void *)(uintptr_t)(a + runtime_shift);
  return 0;
}

void fw_efi_runtime_begin(void) {
  for (int i = 0; i < 14; i++) {
    void *f = fw_efi_runtime_services.functions[i];
    if (f != (void *)efi_set_virtual_address_map && f != (void *)efi_convert_pointer && f != (void *)efi_reset_system)
      fw_efi_runtime_services.functions[i] = (void *)efi_rt_unsupported;
  }
  runtime_phase = 1;
}

void fw_efi_runtime_set_mapping(uint64_t start, uint64_t end, uint64_t shift) {
  runtime_start = start; runtime_end = end; runtime_shift = shift;
}

efi_runtime_services fw_efi_runtime_services = {
  .hdr = { 0x56524553544e5552ull /* "RUNTSERV" */, (2 << 16) | 100, sizeof(efi_runtime_services), 0, 0 },
  .functions = {
    efi_get_time, efi_set_time, efi_get_wakeup_time, efi_set_wakeup_time,
    efi_set_virtual_address_map, efi_convert_pointer, efi_get_variable, efi_get_next_variable_name,
    efi_set_variable, efi_get_next_high_monotonic_count, efi_reset_system, efi_update_capsule,
    efi_query_capsule_capabilities, efi_query_variable_info,
  },
};

efi_simple_text_output_mode fw_efi_con_out_mode = { .max_mode = 1, .mode = 0, .attribute = 0x07, .cursor_visible = 1 };
efi_simple_text_output fw_efi_con_out = {
  (void *)efi_con_out_reset, (void *)efi_con_out_output_string, (void *)efi_con_out_test_string,
  (void *)efi_con_out_query_mode, (void *)efi_con_out_set_mode, (void *)efi_con_out_set_attribute,
  (void *)efi_con_out_clear_screen, (void *)efi_con_out_set_cursor_position, (void *)efi_con_out_enable_cursor,
  &fw_efi_con_out_mode,
};
efi_simple_text_input fw_efi_con_in = { (void *)efi_con_in_reset, (void *)efi_con_in_read_key_stroke, 0 };

efi_configuration_table fw_efi_configuration_tables[FW_EFI_CONFIGURATION_TABLES];
// What works after ExitBootServices (UEFI 2.10 §4.6): ResetSystem (0x400), SetVirtualAddressMap
// (0x80) and ConvertPointer (0x100).
efi_rt_properties_table fw_efi_rt_properties = { 1, sizeof(efi_rt_properties_table), 0x400 | 0x80 | 0x100 };

static uint16_t vendor[] = { 'r', 'e', 'a', 'l', 'm', '-', 'r', 'u', 'n', 0 };
efi_system_table fw_efi_system_table = {
  .hdr = { 0x5453595320494249ull /* "IBI SYST" */, (2 << 16) | 100, sizeof(efi_system_table), 0, 0 },
  .firmware_vendor = vendor,
  .firmware_revision = 0x10000,
  .con_in = &fw_efi_con_in,
  .con_out = &fw_efi_con_out,
  .std_err = &fw_efi_con_out,
  .runtime_services = &fw_efi_runtime_services,
  .boot_services = &fw_efi_boot_services,
  .configuration_table = fw_efi_configuration_tables,
};
