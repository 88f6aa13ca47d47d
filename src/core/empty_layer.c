/* empty_layer.c — stands in for a layer folder that has no sources yet (an object library needs
 * at least one file). */
typedef int lg_empty_layer_unit;
