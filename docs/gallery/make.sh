#!/usr/bin/env bash
# Regenerates the README gallery (needs the googlenet weights: reverie models pull googlenet,
# or reverie models add googlenet FILE).
set -euo pipefail
cd "$(dirname "$0")/../.."
for layer in conv2/3x3 inception_3b/output inception_4c/output inception_5a/output; do
  name=$(echo "$layer" | tr '/' '-')
  ./reverie dream examples/chelsea.png --layer "$layer" -o "docs/gallery/chelsea-$name.jpg"
done
./reverie dream examples/coffee.png -o docs/gallery/coffee-dream.jpg
./reverie dream examples/coffee.png --guide examples/chelsea.png -o docs/gallery/coffee-guided-by-chelsea.jpg
./reverie dream examples/coffee.png -m textures --layer conv4 --steps 20 --step-size 3 -o docs/gallery/coffee-textures.jpg
./reverie dream examples/rocket.jpg --layer inception_4d/output --keep-colors --smooth 1 -o docs/gallery/rocket-4d-keep-colors.jpg
./reverie dream examples/chelsea.png --max-size 240 --octaves 3 --steps 6 --zoom 24 --zoom-scale 0.04 -o docs/gallery/chelsea-zoom.gif
./reverie atlas --layer inception_4a/output --channels 0..15 --steps 128 -o docs/gallery/atlas-inception_4a-0-15.jpg
./reverie visualize --objective class:espresso -o docs/gallery/class-espresso.jpg
./reverie invert examples/chelsea.png --layers conv1/7x7_s2,conv2/3x3,inception_3b/output,inception_4c/output,inception_5b/output --steps 150 -o docs/gallery/invert-chelsea.jpg
./reverie style examples/coffee.png docs/gallery/chelsea-inception_4c-output.jpg --size 384 --steps 300 -o docs/gallery/coffee-style-dream.jpg
./reverie stylize train --style docs/gallery/chelsea-inception_4c-output.jpg --data examples --size 128 --epochs 40 --crops 16 --style-weight 10 --lr 2e-3 -o /tmp/reverie-dreamy.onnx
./reverie stylize examples/rocket.jpg --net /tmp/reverie-dreamy.onnx --max-size 512 -o docs/gallery/rocket-fast-style.jpg
# resnet18, the ImageNet network that comes with the build (no download): one picture per stage.
for layer in layer2.1 layer3.1 layer4.1; do
  ./reverie dream examples/chelsea.png -m resnet18 --layer "$layer" -o "docs/gallery/chelsea-resnet18-$layer.jpg"
done
./reverie dream examples/coffee.png -m resnet18 -o docs/gallery/coffee-resnet18.jpg
./reverie atlas -m resnet18 --layer layer3.1 --channels 0..15 --steps 128 -o docs/gallery/atlas-resnet18-layer3.1-0-15.jpg
# Explanations: every method on chelsea (the raw maps are left out of the gallery).
./reverie explain examples/chelsea.png --method all -o docs/gallery/chelsea-explain.jpg
rm -f docs/gallery/chelsea-explain.npz
# The channels coffee.png drives most, where they fire and what they respond to.
./reverie activations examples/coffee.png --layer inception_4c/output --top 4 -o docs/gallery/coffee-activations.jpg
# The shortcut experiment's figures (docs/shortcut.md).
./reverie science shortcut -o docs/science/shortcut-sheet.jpg
mv docs/science/shortcut-sheet-plots.png docs/science/shortcut-plots.png
# Robust accuracy of the built-in fashion model under the default suite (README, attack benchmark).
./reverie attack benchmark -m fashion --data fashion-mnist --eps 0.03,0.05,0.1 --n 1000 -o /tmp/robust.json
cp /tmp/robust.png docs/gallery/robust-fashion.png
cp /tmp/robust.recipe.json docs/gallery/robust-fashion.recipe.json
