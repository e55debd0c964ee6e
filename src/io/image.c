/* image.c — PNG grids of images through stb_image_write. */
#include "core/err.h"

#include <stb_image_write.h>
#include <stdlib.h>

#define GRID_GAP 1
#define GRID_BACKGROUND 64 /* dark grey between tiles, so white digits stay distinct */

static unsigned char to_byte(float v)
{
    if (!(v > 0.0f))
        return 0;
    if (v >= 1.0f)
        return 255;
    return (unsigned char)(v * 255.0f + 0.5f);
}

/* Copies image k (planes c × h × w) into the canvas at tile (row, col). */
static void put_tile(unsigned char *canvas, int width, int comp, const float *img, int c, int h,
                     int w, int row, int col)
{
    int y0 = GRID_GAP + row * (h + GRID_GAP), x0 = GRID_GAP + col * (w + GRID_GAP);
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++)
            for (int ch = 0; ch < comp; ch++) {
                float v = img[((int64_t)(c == 1 ? 0 : ch) * h + y) * w + x];
                canvas[((int64_t)(y0 + y) * width + x0 + x) * comp + ch] = to_byte(v);
            }
}

int anamo_image_grid_png(const char *path, const float *images, const float *below, int count,
                         int c, int h, int w, int cols, anamo_err *err)
{
    if (count < 1 || cols < 1 || h < 1 || w < 1 || (c != 1 && c != 3))
        return anamo_fail(err, ANAMO_ERR_ARG,
                          "%s: cannot draw %d images of %d×%d×%d (need 1 or 3 channels)", path,
                          count, c, h, w);
    if (cols > count)
        cols = count;
    const int comp = c, rows = (count + cols - 1) / cols, bands = below ? 2 : 1;
    const int width = GRID_GAP + cols * (w + GRID_GAP);
    const int height = GRID_GAP + rows * bands * (h + GRID_GAP);
    unsigned char *canvas = malloc((size_t)width * height * comp);
    if (!canvas)
        return anamo_fail(err, ANAMO_ERR_NOMEM, "%s: out of memory", path);
    for (int64_t i = 0; i < (int64_t)width * height * comp; i++)
        canvas[i] = GRID_BACKGROUND;
    const int64_t size = (int64_t)c * h * w;
    for (int k = 0; k < count; k++) {
        int row = k / cols, col = k % cols;
        put_tile(canvas, width, comp, images + k * size, c, h, w, row * bands, col);
        if (below)
            put_tile(canvas, width, comp, below + k * size, c, h, w, row * bands + 1, col);
    }
    int ok = stbi_write_png(path, width, height, comp, canvas, width * comp);
    free(canvas);
    return ok ? ANAMO_OK : anamo_fail(err, ANAMO_ERR_IO, "%s: cannot write PNG", path);
}
