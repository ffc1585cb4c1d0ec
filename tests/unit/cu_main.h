/* cu_main.h — the shared CUnit runner for every unit-test program.
 *
 * CUnit 2.1-3's CU_basic_run_tests() returns success even when asserts fail,
 * so the exit status comes from CU_get_number_of_failures().  A test file
 * defines its suites with CU_SUITE()/CU_TEST() tables and ends with
 * CU_MAIN(suites).
 */
#ifndef MEMX_CU_MAIN_H
#define MEMX_CU_MAIN_H

#include <CUnit/Basic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct cu_test { const char *name; void (*fn)(void); };
struct cu_suite {
    const char *name;
    int (*init)(void);
    int (*cleanup)(void);
    const struct cu_test *tests;   /* terminated by { NULL, NULL } */
};

static inline int cu_run(const struct cu_suite *suites)
{
    /* CU_ONLY=text runs just the tests whose names contain it (debugging one). */
    const char *only = getenv("CU_ONLY");
    if (CU_initialize_registry() != CUE_SUCCESS)
        return 2;
    for (const struct cu_suite *s = suites; s->name; s++) {
        CU_pSuite su = CU_add_suite(s->name, s->init, s->cleanup);
        if (!su)
            return 2;
        for (const struct cu_test *t = s->tests; t->name; t++)
            if ((!only || strstr(t->name, only)) && !CU_add_test(su, t->name, t->fn))
                return 2;
    }
    CU_basic_set_mode(CU_BRM_VERBOSE);
    CU_basic_run_tests();
    unsigned failures = CU_get_number_of_failures() + CU_get_number_of_suites_failed();
    unsigned run = CU_get_number_of_tests_run(), failed = CU_get_number_of_tests_failed();
    CU_cleanup_registry();
    /* A greppable line the top-level summary adds up. */
    printf("CUNIT-SUMMARY tests=%u failed=%u\n", run, failed);
    return failures ? 1 : 0;
}

#define CU_MAIN(suites) int main(void) { return cu_run(suites); }

#endif
