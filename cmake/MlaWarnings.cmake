# Strict warnings for our own targets only (never for third-party headers).
function(mla_set_warnings target)
  target_compile_options(${target} PRIVATE -Wall -Wextra -Wpedantic -Wshadow -Wnon-virtual-dtor
                                           -Wcast-align -Wunused -Woverloaded-virtual -Wimplicit-fallthrough)
  if(MLA_WERROR)
    target_compile_options(${target} PRIVATE -Werror)
  endif()
endfunction()
