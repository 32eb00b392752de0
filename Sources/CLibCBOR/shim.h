// libcbor (Debian: libcbor-dev; 0.8 in bookworm, 0.10 in the cross build's sysroot, the same API
// for what realm-run uses). Module map only: bookworm's libcbor-dev has a pkg-config file, but the
// cross build's sysroot is not where pkg-config looks.
#ifndef CLIBCBOR_SHIM_H
#define CLIBCBOR_SHIM_H
#include <cbor.h>
#endif
