# test_dynmsg, test_registry (and fuzz_dynmsg in tests/fuzz): the test protos
# of tests/unit/proto/dyn/. protoc-c code builds reference messages; the
# descriptor set (made by protoc alone, since protoc-c 1.4.1 refuses the
# proto3 optional of dyn_opt.proto) feeds the registry.
baton_add_proto_library(dyntest_proto
  PROTOS proto/dyn/dyn.proto proto/dyn/dyn_common.proto
    proto/dyn/dyn_legacy.proto
  IMPORT_DIRS proto)
set(dyn_protos dyn.proto dyn_common.proto dyn_legacy.proto dyn_opt.proto)
list(TRANSFORM dyn_protos PREPEND dyn/ OUTPUT_VARIABLE dyn_names)
list(TRANSFORM dyn_protos PREPEND ${CMAKE_CURRENT_SOURCE_DIR}/proto/dyn/)
set(DYNTEST_DESCRIPTOR_SET ${CMAKE_CURRENT_BINARY_DIR}/dyntest_all.pb
  CACHE INTERNAL "FileDescriptorSet of tests/unit/proto/dyn")
add_custom_command(
  OUTPUT ${DYNTEST_DESCRIPTOR_SET}
  COMMAND ${PROTOC} -I${CMAKE_CURRENT_SOURCE_DIR}/proto
    --include_imports --descriptor_set_out=${DYNTEST_DESCRIPTOR_SET}
    ${dyn_names}
  DEPENDS ${dyn_protos}
  COMMENT "protoc: dyntest descriptor set"
  VERBATIM)
add_custom_target(dyntest_descriptor_set DEPENDS ${DYNTEST_DESCRIPTOR_SET})
foreach(t test_dynmsg test_registry)
  if(TARGET ${t})
    target_link_libraries(${t} PRIVATE dyntest_proto)
    add_dependencies(${t} dyntest_descriptor_set)
    target_compile_definitions(${t} PRIVATE
      DYNTEST_DESCRIPTOR_SET="${DYNTEST_DESCRIPTOR_SET}")
  endif()
endforeach()
