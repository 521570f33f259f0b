# Builds a BPF object with clang and turns it into a libbpf skeleton header,
# so the agent embeds the programs instead of loading .o files at run time.
#
#   shunt_bpf_skeleton(NAME <name> SOURCE <file.bpf.c> HEADERS <h>...
#                      [VARIANT <dir> DEFINES <macro>...])
# produces ${SHUNT_GEN_DIR}/<name>.skel.h and a target <name>_skel; with
# VARIANT, a skeleton of the same name compiled with DEFINES, in
# ${SHUNT_GEN_DIR}/<dir>/, and a target <name>_<dir>_skel (a test build).

find_program(BPF_CLANG NAMES clang clang-14 REQUIRED)
find_program(BPFTOOL NAMES bpftool PATHS /usr/sbin /sbin REQUIRED)

set(SHUNT_GEN_DIR ${CMAKE_BINARY_DIR}/gen)
set(SHUNT_VMLINUX_BTF /sys/kernel/btf/vmlinux CACHE FILEPATH
    "BTF used to generate vmlinux.h (CO-RE relocates against the running kernel)")
file(MAKE_DIRECTORY ${SHUNT_GEN_DIR})

add_custom_command(
  OUTPUT ${SHUNT_GEN_DIR}/vmlinux.h
  COMMAND ${BPFTOOL} btf dump file ${SHUNT_VMLINUX_BTF} format c > ${SHUNT_GEN_DIR}/vmlinux.h
  COMMENT "Generating vmlinux.h from ${SHUNT_VMLINUX_BTF}"
  VERBATIM)

if(CMAKE_SYSTEM_PROCESSOR MATCHES "x86_64|AMD64")
  set(SHUNT_BPF_ARCH x86)
elseif(CMAKE_SYSTEM_PROCESSOR MATCHES "aarch64|arm64")
  set(SHUNT_BPF_ARCH arm64)
else()
  set(SHUNT_BPF_ARCH ${CMAKE_SYSTEM_PROCESSOR})
endif()

function(shunt_bpf_skeleton)
  cmake_parse_arguments(ARG "" "NAME;SOURCE;VARIANT" "HEADERS;DEFINES" ${ARGN})
  set(dir ${SHUNT_GEN_DIR})
  set(target ${ARG_NAME}_skel)
  if(ARG_VARIANT)
    set(dir ${SHUNT_GEN_DIR}/${ARG_VARIANT})
    set(target ${ARG_NAME}_${ARG_VARIANT}_skel)
    file(MAKE_DIRECTORY ${dir})
  endif()
  list(TRANSFORM ARG_DEFINES PREPEND -D)
  set(obj ${dir}/${ARG_NAME}.bpf.o)
  set(skel ${dir}/${ARG_NAME}.skel.h)
  add_custom_command(
    OUTPUT ${obj}
    COMMAND ${BPF_CLANG} -g -O2 -target bpf -D__TARGET_ARCH_${SHUNT_BPF_ARCH}
            ${ARG_DEFINES} -Wall -Wextra -Werror
            -I${SHUNT_GEN_DIR} -I${CMAKE_SOURCE_DIR}/bpf
            -c ${ARG_SOURCE} -o ${obj}
    DEPENDS ${ARG_SOURCE} ${ARG_HEADERS} ${SHUNT_GEN_DIR}/vmlinux.h
    COMMENT "Compiling BPF object ${ARG_NAME} ${ARG_VARIANT}"
    VERBATIM)
  add_custom_command(
    OUTPUT ${skel}
    COMMAND ${BPFTOOL} gen skeleton ${obj} name ${ARG_NAME} > ${skel}
    DEPENDS ${obj}
    COMMENT "Generating skeleton ${ARG_NAME}.skel.h ${ARG_VARIANT}"
    VERBATIM)
  add_custom_target(${target} DEPENDS ${skel})
endfunction()
