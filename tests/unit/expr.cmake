# test_expr: the expression language over tests/unit/proto/expr/ (generated
# code builds the messages; the descriptor set feeds the registry). fuzz_expr
# (tests/fuzz) uses the same library and descriptor set.
#
# protoc-c 1.4.1 refuses proto3 optional, so exprtest_opt.proto only goes
# into the descriptor set, made here by protoc alone.
baton_add_proto_library(exprtest_proto
  PROTOS proto/expr/exprtest.proto
  IMPORT_DIRS proto/expr)
set(EXPRTEST_DESCRIPTOR_SET ${CMAKE_CURRENT_BINARY_DIR}/exprtest_all.pb
  CACHE INTERNAL "FileDescriptorSet of tests/unit/proto/expr")
add_custom_command(
  OUTPUT ${EXPRTEST_DESCRIPTOR_SET}
  COMMAND ${PROTOC} -I${CMAKE_CURRENT_SOURCE_DIR}/proto/expr
    --include_imports --descriptor_set_out=${EXPRTEST_DESCRIPTOR_SET}
    exprtest.proto exprtest_opt.proto
  DEPENDS ${CMAKE_CURRENT_SOURCE_DIR}/proto/expr/exprtest.proto
    ${CMAKE_CURRENT_SOURCE_DIR}/proto/expr/exprtest_opt.proto
  COMMENT "protoc: exprtest descriptor set"
  VERBATIM)
add_custom_target(exprtest_descriptor_set DEPENDS ${EXPRTEST_DESCRIPTOR_SET})
if(TARGET test_expr)
  target_link_libraries(test_expr PRIVATE exprtest_proto)
  add_dependencies(test_expr exprtest_descriptor_set)
  target_compile_definitions(test_expr PRIVATE
    EXPRTEST_DESCRIPTOR_SET="${EXPRTEST_DESCRIPTOR_SET}")
endif()
