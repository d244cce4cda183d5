// Stand-in for CUDA's math_constants.h in CPU-emulation builds (see ../cuda_emu.h).
#pragma once
#include "../cuda_emu.h"
