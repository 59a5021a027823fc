# Unit tests that need generated code (included from tests/unit/CMakeLists.txt,
# after the glob made one executable per test_*.c).

# test_generator: the stubs protoc-gen-baton writes for proto/gentest.proto.
if(TARGET test_generator)
  baton_add_proto_library(gentest_proto
    PROTOS proto/gentest.proto proto/gentest_common.proto
    IMPORT_DIRS proto)
  target_link_libraries(test_generator PRIVATE gentest_proto)
  # The test records what the stubs hand the runtime: ld --wrap sends the
  # stubs' calls of these functions to the test's __wrap_* versions.
  set(wrapped bt_call_finish bt_call_send bt_server_add_service
    bt_channel_call bt_channel_start_call bt_sync_unary bt_sync_call_start
    bt_sync_call_send bt_sync_call_close_send bt_sync_call_recv)
  list(TRANSFORM wrapped PREPEND "--wrap=")
  string(REPLACE ";" "," wrapped "${wrapped}")
  target_link_options(test_generator PRIVATE "LINKER:${wrapped}")
endif()

# The generator refuses a service whose stubs would reuse a name protoc-c
# already gave another method's function, and says which two clash.
add_test(NAME unit.generator_rejects_name_clash
  COMMAND ${PROTOC} -I${CMAKE_CURRENT_SOURCE_DIR}/proto
    --plugin=protoc-gen-baton=$<TARGET_FILE:protoc-gen-baton>
    --baton_out=${CMAKE_CURRENT_BINARY_DIR}
    ${CMAKE_CURRENT_SOURCE_DIR}/proto/clash.proto)
set_tests_properties(unit.generator_rejects_name_clash PROPERTIES
  PASS_REGULAR_EXPRESSION "get_sync of protoc-c's client function for baton_test.clash.Clash.GetSync clashes with the stubs of method baton_test.clash.Clash.Get")

# test_expr (and fuzz_expr): the expression language's test proto.
include(${CMAKE_CURRENT_SOURCE_DIR}/expr.cmake)

# test_dynmsg, test_registry (and fuzz_dynmsg): the dynamic messages' protos.
include(${CMAKE_CURRENT_SOURCE_DIR}/dyn.cmake)

# test_engine: flows, the engine and sagas in memory, over its test proto.
include(${CMAKE_CURRENT_SOURCE_DIR}/engine.cmake)
