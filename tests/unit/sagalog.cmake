# test_sagalog's PostgreSQL half: unit.test_sagalog (in UNIT_TESTS) runs the
# SQLite tests; this runs the PostgreSQL ones against a throwaway cluster
# that tests/e2e/pg.sh starts, hands over in BATON_TEST_PG and removes, also
# when the test fails. Without Debian's postgresql package it fails and says
# so, rather than skipping.
if(TARGET test_sagalog)
  add_test(NAME unit.test_sagalog.pg
           COMMAND bash ${PROJECT_SOURCE_DIR}/tests/e2e/pg.sh run -- $<TARGET_FILE:test_sagalog> --pg-only)
  set_tests_properties(unit.test_sagalog.pg PROPERTIES TIMEOUT 120)
endif()
