# test_engine: the flow compiler, the engine and sagas run in memory over
# tests/unit/proto/engine/ (generated code builds and reads the messages; the
# descriptor set feeds the registry).
baton_add_proto_library(enginetest_proto
  PROTOS proto/engine/enginetest.proto
  IMPORT_DIRS proto/engine)
if(TARGET test_engine)
  get_target_property(enginetest_pb enginetest_proto BATON_DESCRIPTOR_SET)
  target_link_libraries(test_engine PRIVATE enginetest_proto)
  target_compile_definitions(test_engine PRIVATE
    ENGINETEST_DESCRIPTOR_SET="${enginetest_pb}")
  # The network, the clock and the jitter are the test's: ld --wrap sends
  # the gateway's calls of these to the test's __wrap_* fakes (a fake
  # upstream, a fake client call, fake timers on a fake clock).
  set(wrapped
    bt_channel_start_call bt_client_call_send_bytes bt_client_call_close_send
    bt_client_call_cancel
    bt_call_request_bytes bt_call_request_metadata bt_call_deadline
    bt_call_on_cancel bt_call_send_bytes bt_call_finish
    bt_timer_new bt_timer_start bt_timer_stop bt_timer_free bt_now_ms
    gw_upstream_pick rand)
  list(TRANSFORM wrapped PREPEND "--wrap=")
  string(REPLACE ";" "," wrapped "${wrapped}")
  target_link_options(test_engine PRIVATE "LINKER:${wrapped}")
endif()
