// Contact pictures are shown as small circles: any image the user picks (a file, the Contact Picker's icon) is
// scaled and cropped to a square thumbnail, which also keeps it under the contact book's size limit.
const SIZE = 256;
const QUALITY = 0.85;

export async function thumbnail(image: Blob): Promise<{ type: string; bytes: Uint8Array }> {
  const bitmap = await createImageBitmap(image);
  try {
    const canvas = document.createElement('canvas');
    canvas.width = SIZE;
    canvas.height = SIZE;
    const ctx = canvas.getContext('2d');
    if (!ctx) throw new Error('this browser cannot draw images');
    // Cover: the middle square of the picture, scaled to the thumbnail.
    const side = Math.min(bitmap.width, bitmap.height);
    ctx.drawImage(bitmap, (bitmap.width - side) / 2, (bitmap.height - side) / 2, side, side, 0, 0, SIZE, SIZE);
    const blob = await new Promise<Blob | null>((resolve) => canvas.toBlob(resolve, 'image/jpeg', QUALITY));
    if (!blob) throw new Error('the picture could not be converted');
    return { type: 'image/jpeg', bytes: new Uint8Array(await blob.arrayBuffer()) };
  } finally {
    bitmap.close();
  }
}
