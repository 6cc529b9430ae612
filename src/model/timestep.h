/* The sinusoidal timestep features fed to t_embedder1 (spec 03 §2). */
#ifndef HD_MODEL_TIMESTEP_H
#define HD_MODEL_TIMESTEP_H

/* Writes dim values: cos(arg_0..arg_{half-1}) then sin(arg_0..arg_{half-1}), half = dim/2, and a
 * trailing 0 when dim is odd. t is the model time in [0, 1]; u = fl32(t * 1000) (t is taken as a
 * double so that a float32 pipeline time and a float64 reference time are both scaled exactly
 * once); f_k = exp(fl32(fl32(fl32(-ln 10000) * k) / half)); arg_k = fl32(u * f_k). exp, cos and
 * sin are correctly rounded float32 functions (the double result rounded once). */
void hd_timestep_sinusoid(double t, int dim, float *out);

#endif
