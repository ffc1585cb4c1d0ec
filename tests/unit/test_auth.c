/* Cluster-key proofs: the right key passes, anything else fails. */
#include "auth.h"
#include "cu_main.h"

#include <string.h>

static void test_proofs(void)
{
    uint8_t key[MEMX_KEY_BYTES], other[MEMX_KEY_BYTES], sn[PROTO_NONCE_BYTES], cn[PROTO_NONCE_BYTES];
    uint8_t mac[PROTO_MAC_BYTES], mac2[PROTO_MAC_BYTES];
    CU_ASSERT_EQUAL_FATAL(auth_init(), 0);
    memset(key, 1, sizeof(key));
    memset(other, 2, sizeof(other));
    auth_nonce(sn);
    auth_nonce(cn);
    CU_ASSERT_NOT_EQUAL(memcmp(sn, cn, sizeof(sn)), 0);
    auth_proof(key, AUTH_CLIENT, sn, cn, "backd@a", "memd@b", mac);
    CU_ASSERT_TRUE(auth_check(key, AUTH_CLIENT, sn, cn, "backd@a", "memd@b", mac));
    CU_ASSERT_FALSE(auth_check(other, AUTH_CLIENT, sn, cn, "backd@a", "memd@b", mac));
    CU_ASSERT_FALSE(auth_check(key, AUTH_SERVER, sn, cn, "backd@a", "memd@b", mac));  /* no reflection */
    CU_ASSERT_FALSE(auth_check(key, AUTH_CLIENT, cn, sn, "backd@a", "memd@b", mac));  /* nonces bound */
    CU_ASSERT_FALSE(auth_check(key, AUTH_CLIENT, sn, cn, "backd@", "amemd@b", mac));  /* ids framed */
    mac2[0] = 0;
    memcpy(mac2, mac, sizeof(mac));
    mac2[31] ^= 1;
    CU_ASSERT_FALSE(auth_check(key, AUTH_CLIENT, sn, cn, "backd@a", "memd@b", mac2));
    auth_proof(key, AUTH_CLIENT, sn, cn, "backd@a", "memd@b", mac2);
    CU_ASSERT_EQUAL(memcmp(mac, mac2, sizeof(mac)), 0);                              /* deterministic */
}

static const struct cu_test tests[] = { { "proofs", test_proofs }, { NULL, NULL } };
static const struct cu_suite suites[] = { { "auth", NULL, NULL, tests }, { NULL, NULL, NULL, NULL } };
CU_MAIN(suites)
