#include "model/timestep.h"

#include <math.h>

void hd_timestep_sinusoid(double t, int dim, float *out) {
    int half = dim / 2;
    float u = (float)(t * 1000.0);
    float c = (float)(-log(10000.0)); /* the Python float constant, rounded to the tensor dtype */
    for (int k = 0; k < half; k++) {
        float a = c * (float)k;
        float b = a / (float)half;
        float f = (float)exp((double)b);
        float arg = u * f;
        out[k] = (float)cos((double)arg);
        out[half + k] = (float)sin((double)arg);
    }
    if (dim % 2) out[dim - 1] = 0.0f;
}
