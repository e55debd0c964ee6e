/* png.c — PNG grids of images through stb_image_write. Images smaller than 28 pixels a side
 * are magnified by an integer factor so a 10×10 image stays visible. */
#include "anamo_program.h"

#include <stb_image_write.h>
#include <stdlib.h>
#include <string.h>

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

/* Small images are magnified (nearest neighbour) to at least this many pixels a side. */
#define GRID_MIN_SIDE 28

static int magnification(int h, int w)
{
    int side = h < w ? h : w;
    return side >= GRID_MIN_SIDE ? 1 : (GRID_MIN_SIDE + side - 1) / side;
}

/* Copies an image (planes c × h × w) into the canvas at tile (row, col), magnified by k. */
static void put_tile(unsigned char *canvas, int width, int comp, const float *img, int c, int h,
                     int w, int k, int row, int col)
{
    int y0 = GRID_GAP + row * (h * k + GRID_GAP), x0 = GRID_GAP + col * (w * k + GRID_GAP);
    for (int y = 0; y < h * k; y++)
        for (int x = 0; x < w * k; x++)
            for (int ch = 0; ch < comp; ch++) {
                float v = img[((int64_t)(c == 1 ? 0 : ch) * h + y / k) * w + x / k];
                canvas[((int64_t)(y0 + y) * width + x0 + x) * comp + ch] = to_byte(v);
            }
}

int anamo_image_grid_png(const char *path, const float *const *bands, int nbands, int count, int c,
                         int h, int w, int cols, anamo_err *err)
{
    if (count < 1 || cols < 1 || h < 1 || w < 1 || nbands < 1 || (c != 1 && c != 3))
        return anamo_err_set(err, ANAMO_ERR_ARG,
                             "%s: cannot draw %d images of %d×%d×%d in %d bands (need 1 or 3 "
                             "channels)",
                             path, count, c, h, w, nbands);
    if (cols > count)
        cols = count;
    const int comp = c, rows = (count + cols - 1) / cols, k = magnification(h, w);
    const int width = GRID_GAP + cols * (w * k + GRID_GAP);
    const int height = GRID_GAP + rows * nbands * (h * k + GRID_GAP);
    unsigned char *canvas = malloc((size_t)width * height * comp);
    if (!canvas)
        return anamo_err_set(err, ANAMO_ERR_NOMEM, "%s: out of memory", path);
    memset(canvas, GRID_BACKGROUND, (size_t)width * height * comp);
    const int64_t size = (int64_t)c * h * w;
    for (int i = 0; i < count; i++)
        for (int band = 0; band < nbands; band++)
            put_tile(canvas, width, comp, bands[band] + i * size, c, h, w, k,
                     (i / cols) * nbands + band, i % cols);
    int ok = stbi_write_png(path, width, height, comp, canvas, width * comp);
    free(canvas);
    return ok ? ANAMO_OK : anamo_err_set(err, ANAMO_ERR_IO, "%s: cannot write PNG", path);
}
