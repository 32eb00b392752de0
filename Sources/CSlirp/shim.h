// libslirp for `--net user`: Debian's libslirp-dev here; the static aarch64 executable links the
// libslirp.a that Scripts/cross-build compiles from Debian's source package.
#include <slirp/libslirp.h>
