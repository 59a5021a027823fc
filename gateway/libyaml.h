/* libyaml.h (gateway, private): reaches libyaml's <yaml.h>, which this
 * folder's own yaml.h hides once gateway/ is on the include path.
 * Include it as <libyaml.h>: #include_next then searches the directories
 * after gateway/, where the system header is. */
#ifndef GW_LIBYAML_H
#define GW_LIBYAML_H
#include_next <yaml.h>
#endif
