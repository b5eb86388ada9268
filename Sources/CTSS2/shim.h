#ifndef RAMPART_CTSS2_SHIM_H
#define RAMPART_CTSS2_SHIM_H

/*
 * Swift view of the TPM 2.0 Software Stack (tpm2-tss, Debian libtss2-dev 3.2.x).
 *
 * ESYS drives the TPM, the TCTI loader opens the transport ("swtpm:..." or
 * "device:/dev/tpmrm0"), MU (un)marshals TPM structures and RC decodes return
 * codes into text for error messages.
 */
#include <tss2/tss2_esys.h>
#include <tss2/tss2_tctildr.h>
#include <tss2/tss2_mu.h>
#include <tss2/tss2_rc.h>

/*
 * Swift's ClangImporter only imports macros that are a single literal, optionally
 * cast. Macros built from other macros (TPM2_RC_VER1 + 0x000, TPM2_PT_FIXED + 44,
 * TPM2_HT_TRANSIENT << TPM2_HR_SHIFT) are dropped, and so is TPM2_GENERATED_VALUE
 * (0xff544347 cast to a typedef'd UINT32). Re-export the ones the wrapper needs as
 * constants; their values come from the headers above, so they cannot drift.
 */

/* Response codes. */
static const TSS2_RC CTSS2_RC_INITIALIZE = TPM2_RC_INITIALIZE;         /* 0x100: TPM already started */
static const TSS2_RC CTSS2_RC_OBJECT_MEMORY = TPM2_RC_OBJECT_MEMORY;   /* 0x902: no free object slot */

/* Capability properties and handle ranges. */
static const TPM2_PT CTSS2_PT_NV_BUFFER_MAX = TPM2_PT_NV_BUFFER_MAX;   /* 0x12c */
static const TPM2_HC CTSS2_TRANSIENT_FIRST = TPM2_TRANSIENT_FIRST;     /* 0x80000000 */
static const TPM2_HC CTSS2_NV_INDEX_FIRST = TPM2_NV_INDEX_FIRST;       /* 0x01000000 */

/* Magic at the start of every TPMS_ATTEST the TPM creates ("\xffTCG"). */
static const TPM2_GENERATED CTSS2_GENERATED_VALUE = TPM2_GENERATED_VALUE;

#endif
