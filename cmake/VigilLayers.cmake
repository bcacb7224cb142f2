# Dependencies point down the layers (docs/layers.md): every vigil library has a layer, and may
# link only libraries of lower layers. Checked when the build is configured; a library without
# a layer, or one that links its own layer or a higher one, stops the configuration.
set(VIGIL_LAYERS
  "vigil_common vigil_proto"                                 # status, config, logging; .proto
  "vigil_security"                                           # identities, permissions, TLS
  "vigil_transport"                                          # verbs, fake, bootstrap
  "vigil_channel"                                            # polling, notify, rpc
  "vigil_replica vigil_ssr"                                  # replica API and processes; SSRs
  "vigil_workloads vigil_server vigil_node vigil_voter"      # programs, servers, the roles
  "vigil_run"                                                # vigil-run: voter + executor
  "vigil_testing"                                            # test doubles (ThreadLauncher)
  "vigil_bench_lib vigil_conformance vigil_test_plaintext vigil_replication_harness")  # tools, tests

function(vigil_collect_targets dir out)
  get_property(targets DIRECTORY ${dir} PROPERTY BUILDSYSTEM_TARGETS)
  get_property(subdirs DIRECTORY ${dir} PROPERTY SUBDIRECTORIES)
  foreach(sub IN LISTS subdirs)
    vigil_collect_targets(${sub} more)
    list(APPEND targets ${more})
  endforeach()
  set(${out} ${targets} PARENT_SCOPE)
endfunction()

function(vigil_check_layers)
  set(level 0)
  foreach(layer IN LISTS VIGIL_LAYERS)
    separate_arguments(libs UNIX_COMMAND "${layer}")
    foreach(lib IN LISTS libs)
      set(layer_of_${lib} ${level})
    endforeach()
    math(EXPR level "${level} + 1")
  endforeach()
  vigil_collect_targets(${PROJECT_SOURCE_DIR} targets)
  foreach(target IN LISTS targets)
    get_target_property(type ${target} TYPE)
    if(NOT target MATCHES "^vigil_" OR NOT type MATCHES "LIBRARY$")
      continue()
    endif()
    if(NOT DEFINED layer_of_${target})
      message(SEND_ERROR "layers: library ${target} has no layer in VIGIL_LAYERS "
                         "(cmake/VigilLayers.cmake, docs/layers.md)")
      continue()
    endif()
    get_target_property(deps ${target} LINK_LIBRARIES)
    foreach(dep IN LISTS deps)
      if(dep MATCHES "^vigil_" AND DEFINED layer_of_${dep}
         AND NOT layer_of_${dep} LESS layer_of_${target})
        message(SEND_ERROR "layers: ${target} (layer ${layer_of_${target}}) links ${dep} "
                           "(layer ${layer_of_${dep}}): a library may link only lower layers "
                           "(docs/layers.md)")
      endif()
    endforeach()
  endforeach()
endfunction()
