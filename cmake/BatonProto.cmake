# BatonProto.cmake: one line in a CMakeLists turns .proto files into a C
# library of protoc-c messages and Baton stubs.
#
#   baton_add_proto_library(<target>
#     PROTOS proto/shop/v1/orders.proto proto/shop/v1/common.proto ...
#     [IMPORT_DIRS proto ...])
#
# runs protoc once over PROTOS with protoc-c (--c_out) and protoc-gen-baton
# (--baton_out) into ${CMAKE_CURRENT_BINARY_DIR}/gen, and builds the STATIC
# library <target> from the generated foo.pb-c.c and foo.baton.c, linking
# `baton`, with the gen dir as a PUBLIC include dir. A program then does
#
#   target_link_libraries(my-backend PRIVATE <target>)
#   #include "shop/v1/orders.baton.h"
#
# PROTOS are relative to the current source dir (or absolute) and must lie
# under one of IMPORT_DIRS (default: the current source dir); generated names
# follow their path below it, as protoc-c's do. List every .proto the library
# needs, imported ones included (each needs its .pb-c.c compiled); protobuf's
# own well-known types are found in protoc's default include path. Two
# libraries made in one directory share its gen dir, so must not share a
# .proto.
#
# protoc also writes ${CMAKE_CURRENT_BINARY_DIR}/<target>.pb, a
# FileDescriptorSet with every import included (what the gateway loads); its
# path is the target's BATON_DESCRIPTOR_SET property:
#
#   get_target_property(pb <target> BATON_DESCRIPTOR_SET)

find_program(BATON_PROTOC_GEN_C protoc-gen-c REQUIRED)

# Where protobuf's own .proto files are (descriptor.proto, plugin.proto): from
# protobuf's pkg-config file when there is one, else the compiler's paths.
pkg_check_modules(PROTOBUF QUIET protobuf)
find_path(BATON_PROTOBUF_INCLUDE_DIR google/protobuf/descriptor.proto
  HINTS ${PROTOBUF_INCLUDEDIR} ${PROTOBUF_INCLUDE_DIRS} REQUIRED)

# baton_descriptor_pb: descriptor.proto in protobuf-c, generated and compiled
# once for the two that read descriptors: protoc-gen-baton (protoc's request)
# and the gateway's registry (the descriptor sets it loads).
set(BATON_DESCRIPTOR_GEN ${PROJECT_BINARY_DIR}/descriptor-gen)
add_custom_command(
  OUTPUT ${BATON_DESCRIPTOR_GEN}/google/protobuf/descriptor.pb-c.c
         ${BATON_DESCRIPTOR_GEN}/google/protobuf/descriptor.pb-c.h
  COMMAND ${CMAKE_COMMAND} -E make_directory ${BATON_DESCRIPTOR_GEN}
  COMMAND ${PROTOC} -I${BATON_PROTOBUF_INCLUDE_DIR}
    --plugin=protoc-gen-c=${BATON_PROTOC_GEN_C} --c_out=${BATON_DESCRIPTOR_GEN}
    google/protobuf/descriptor.proto
  DEPENDS ${BATON_PROTOBUF_INCLUDE_DIR}/google/protobuf/descriptor.proto
  COMMENT "protoc-c: descriptor.proto"
  VERBATIM)
add_library(baton_descriptor_pb STATIC ${BATON_DESCRIPTOR_GEN}/google/protobuf/descriptor.pb-c.c)
target_include_directories(baton_descriptor_pb PUBLIC ${BATON_DESCRIPTOR_GEN})
target_link_libraries(baton_descriptor_pb PUBLIC PkgConfig::PROTOBUFC)
# protoc-c's generated code is not ours to warn about.
target_compile_options(baton_descriptor_pb PRIVATE -Wno-error)

function(baton_add_proto_library target)
  cmake_parse_arguments(PARSE_ARGV 1 ARG "" "" "PROTOS;IMPORT_DIRS")
  if(ARG_UNPARSED_ARGUMENTS)
    message(FATAL_ERROR "baton_add_proto_library(${target}): unexpected arguments: ${ARG_UNPARSED_ARGUMENTS}")
  endif()
  if(NOT ARG_PROTOS)
    message(FATAL_ERROR "baton_add_proto_library(${target}): PROTOS is empty")
  endif()
  if(NOT ARG_IMPORT_DIRS)
    set(ARG_IMPORT_DIRS ${CMAKE_CURRENT_SOURCE_DIR})
  endif()

  set(gen ${CMAKE_CURRENT_BINARY_DIR}/gen)
  set(descriptor_set ${CMAKE_CURRENT_BINARY_DIR}/${target}.pb)

  set(import_flags "")
  set(import_dirs "")
  foreach(dir IN LISTS ARG_IMPORT_DIRS)
    get_filename_component(dir ${dir} ABSOLUTE BASE_DIR ${CMAKE_CURRENT_SOURCE_DIR})
    list(APPEND import_dirs ${dir})
    list(APPEND import_flags -I${dir})
  endforeach()

  set(protos "")
  set(outputs "")
  set(sources "")
  foreach(proto IN LISTS ARG_PROTOS)
    get_filename_component(proto ${proto} ABSOLUTE BASE_DIR ${CMAKE_CURRENT_SOURCE_DIR})
    # The path below the first import dir that holds it: protoc's name for it.
    set(rel "")
    foreach(dir IN LISTS import_dirs)
      file(RELATIVE_PATH candidate ${dir} ${proto})
      if(NOT candidate MATCHES "^\\.\\./")
        set(rel ${candidate})
        break()
      endif()
    endforeach()
    if(rel STREQUAL "")
      message(FATAL_ERROR "baton_add_proto_library(${target}): ${proto} is not under any of IMPORT_DIRS (${import_dirs})")
    endif()
    string(REGEX REPLACE "\\.proto$" "" stem ${rel})
    list(APPEND protos ${proto})
    list(APPEND sources ${gen}/${stem}.pb-c.c ${gen}/${stem}.baton.c)
    list(APPEND outputs ${gen}/${stem}.pb-c.c ${gen}/${stem}.pb-c.h
                        ${gen}/${stem}.baton.c ${gen}/${stem}.baton.h)
  endforeach()

  add_custom_command(
    OUTPUT ${outputs} ${descriptor_set}
    COMMAND ${CMAKE_COMMAND} -E make_directory ${gen}
    COMMAND ${PROTOC} ${import_flags}
      --plugin=protoc-gen-c=${BATON_PROTOC_GEN_C} --c_out=${gen}
      --plugin=protoc-gen-baton=$<TARGET_FILE:protoc-gen-baton> --baton_out=${gen}
      --include_imports --descriptor_set_out=${descriptor_set}
      ${protos}
    DEPENDS ${protos} protoc-gen-baton
    COMMENT "protoc: ${target} (protoc-c and protoc-gen-baton)"
    VERBATIM)

  add_library(${target} STATIC ${sources})
  target_include_directories(${target} PUBLIC ${gen})
  target_link_libraries(${target} PUBLIC baton)
  set_target_properties(${target} PROPERTIES BATON_DESCRIPTOR_SET ${descriptor_set})
endfunction()
