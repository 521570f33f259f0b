# shunt_layer(PREFIX NAME [FOLDER DIR] SOURCES ... DEPENDS ...): one folder of
# src/ as the static library PREFIX_NAME. Its public include folder is the
# folder itself (NAME unless FOLDER is given), so its headers are reachable
# only through the libraries that declare a dependency on it.
function(shunt_layer prefix name)
  cmake_parse_arguments(ARG "" "FOLDER" "SOURCES;DEPENDS" ${ARGN})
  if(NOT ARG_FOLDER)
    set(ARG_FOLDER ${name})
  endif()
  add_library(${prefix}_${name} STATIC ${ARG_SOURCES})
  target_include_directories(${prefix}_${name} PUBLIC src/${ARG_FOLDER})
  target_link_libraries(${prefix}_${name} PUBLIC ${ARG_DEPENDS})
endfunction()
