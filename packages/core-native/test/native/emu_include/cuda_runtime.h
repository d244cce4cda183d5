// Stand-in for the CUDA runtime header in CPU-emulation builds (see ../cuda_emu.h).
#pragma once
#include "../cuda_emu.h"
