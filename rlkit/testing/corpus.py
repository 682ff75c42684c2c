"""Fixed English training text for the tiny tokenizers.

The tiny models' tokenizers are trained on this corpus so that builds are deterministic and the
vocabulary covers the words other rooms emit: Lightroom develop keys, canonical edit parameter names,
JSON punctuation, the JarvisArt / RetouchIQ answer formats, chat/tool-calling words and the
blemish/diagnosis vocabulary. Changing this text changes the cache key (tokenizers are rebuilt).
"""

from __future__ import annotations

_PROSE = """\
A photo retouching agent looks at an image, finds what is wrong with it and fixes it with edits.
The photo is too dark, so raise the exposure by one stop and lift the shadows a little.
The sky is overexposed: recover the highlights, lower the whites and add some dehaze.
The portrait looks flat. Increase the contrast, add clarity and a touch of texture to the skin.
The colors are dull; boost the vibrance and the saturation, then warm the white balance.
The image has a blue cast, so raise the temperature and shift the tint toward magenta.
The landscape needs more depth: darken the blacks, brighten the midtones and add a vignette.
Reduce the noise in the shadows, then sharpen the details of the eyes and the hair.
The grass is too yellow. Shift the green hue, lower the yellow saturation and brighten the orange.
Make the sunset warmer with a split tone: orange highlights and teal shadows, balance plus twenty.
Apply a radial mask on the face and raise the local exposure, then a linear gradient on the sky.
The retouched result should keep the identity of the subject and look natural and plausible.
Describe the flaws first, then give the edit program as JSON with only the changed keys.
The user asks: make this photo brighter and more vivid, like a summer afternoon.
The instruction says: turn the photo into a moody film look with faded blacks and soft grain.
The evaluator scores perceptual quality, instruction following and visual consistency from zero to ten.
The reward model compares the edited image with the expert target and the source image.
A blemish is a small local flaw: a spot, acne, a scratch, dust, a red eye, a stray hair or a wrinkle.
Artifacts from generation include distorted hands, extra fingers, warped text, blurry faces and seams.
The inpainting tool fills the masked region and keeps the pixels outside the mask unchanged.
The saliency map shows where people look: faces, eyes, text and bright high contrast objects.
The astronaut, the coffee cup, the cat chelsea, the rocket, the china palace and the flower.
Think step by step about the lighting, the color, the tone and the composition before answering.
The answer must be valid and the values must stay inside the documented range of each parameter.
"""

_FORMATS = """\
<think>The image is underexposed and the colors are muted.</think><answer>{"Exposure2012": 0.85, \
"Contrast2012": 15, "Highlights2012": -40, "Shadows2012": 35, "Vibrance": 20}</answer>
<think>The sky is washed out.</think><answer>{"Highlights2012": -60, "Whites2012": -20, "Dehaze": 12, \
"Temperature": 5600, "Tint": 8, "Saturation": -5, "Clarity2012": 10, "Texture": 6}</answer>
<answer>{"Blacks2012": -12, "Whites2012": 18, "Sharpness": 40, "SharpenRadius": 1.0, "SharpenDetail": 25, \
"LuminanceSmoothing": 20, "ColorNoiseReduction": 25, "PostCropVignetteAmount": -15, "GrainAmount": 10}</answer>
{"HueAdjustmentRed": 5, "HueAdjustmentOrange": -3, "HueAdjustmentYellow": -10, "HueAdjustmentGreen": 12, \
"HueAdjustmentAqua": 0, "HueAdjustmentBlue": -8, "HueAdjustmentPurple": 4, "HueAdjustmentMagenta": 2}
{"SaturationAdjustmentRed": -5, "SaturationAdjustmentOrange": 10, "SaturationAdjustmentYellow": -20, \
"SaturationAdjustmentGreen": 15, "SaturationAdjustmentAqua": 5, "SaturationAdjustmentBlue": 25, \
"SaturationAdjustmentPurple": -10, "SaturationAdjustmentMagenta": 0}
{"LuminanceAdjustmentRed": 3, "LuminanceAdjustmentOrange": 12, "LuminanceAdjustmentYellow": 8, \
"LuminanceAdjustmentGreen": -6, "LuminanceAdjustmentAqua": 4, "LuminanceAdjustmentBlue": -15, \
"LuminanceAdjustmentPurple": 2, "LuminanceAdjustmentMagenta": -1}
{"IncrementalTemperature": 12, "IncrementalTint": -4, "ParametricShadows": 10, "ParametricDarks": -5, \
"ParametricLights": 8, "ParametricHighlights": -12, "ParametricShadowSplit": 25, "ParametricMidtoneSplit": 50, \
"ParametricHighlightSplit": 75, "ToneCurvePV2012": [[0, 0], [64, 60], [128, 132], [192, 200], [255, 255]]}
{"SplitToningShadowHue": 200, "SplitToningShadowSaturation": 20, "SplitToningHighlightHue": 40, \
"SplitToningHighlightSaturation": 25, "SplitToningBalance": 10, "ColorGradeMidtoneHue": 30, \
"ColorGradeMidtoneSat": 10, "ColorGradeBlending": 50, "ToneCurvePV2012Red": [[0, 0], [255, 255]]}
{"MaskGroupBasedCorrections": [{"CorrectionMasks": [{"What": "Mask/CircularGradient", "Top": 0.2, \
"Left": 0.3, "Bottom": 0.7, "Right": 0.8, "Angle": 0, "Feather": 50, "Flipped": false}], \
"LocalExposure2012": 0.3, "LocalContrast2012": 0.1, "LocalHighlights2012": -0.2, "LocalShadows2012": 0.25, \
"LocalWhites2012": 0.05, "LocalBlacks2012": -0.05, "LocalClarity": 0.2, "LocalDehaze": 0.1, \
"LocalTexture": 0.1, "LocalSaturation": 0.15, "LocalTemperature": 0.1, "LocalTint": -0.05}]}
{"What": "Mask/Gradient", "ZeroX": 0.5, "ZeroY": 0.0, "FullX": 0.5, "FullY": 0.4, "Inverted": true}
The region is <box>[12, 40, 96, 128]</box> and the user wants it brighter.
exposure=+0.9; contrast=-30; highlights=-45; shadows=+25; whites=+10; blacks=-8
{exposure=-0.35; temperature=+12; tint=-6; vibrance=+18; saturation=-4; texture=+5; clarity=+12; dehaze=+8}
{"exposure": 0.5, "contrast": 10, "highlights": -20, "shadows": 15, "whites": 5, "blacks": -5, \
"temperature": 10, "tint": -3, "vibrance": 12, "saturation": 6, "texture": 4, "clarity": 8, "dehaze": 3}
{"vignette_amount": -20, "grain_amount": 12, "sharpening": 35, "noise_reduction": 15, "hsl_hue_red": 4, \
"hsl_saturation_orange": -8, "hsl_luminance_yellow": 6, "hsl_hue_green": -12, "hsl_saturation_aqua": 10, \
"hsl_luminance_blue": -14, "hsl_hue_purple": 3, "hsl_saturation_magenta": 2, "tone_curve": [[0, 0], [1, 1]]}
[{"flaw_type": "blemish", "description": "a dark spot on the left cheek"}, {"flaw_type": "acne", \
"description": "red acne near the chin"}, {"flaw_type": "wrinkle", "description": "fine lines under the eyes"}]
[{"flaw_type": "scratch", "description": "a thin white scratch across the sky"}, {"flaw_type": "dust", \
"description": "dust spots in the upper right corner"}, {"flaw_type": "red_eye", "description": "red pupils"}]
[{"flaw_type": "distortion", "description": "the hand has six fingers"}, {"flaw_type": "artifact", \
"description": "a blurry seam near the horizon"}, {"flaw_type": "color_cast", "description": "a green cast"}]
{"perceptual_quality": 7, "instruction_following": 8, "visual_consistency": 9, "overall": 8.1, "score": 7.5}
{"semantic_consistency": 6, "plausibility": 8, "aesthetics": 7, "alignment": 9, "sc": 6, "pq": 8, "o": 6.9}
"""

_TOOLS = """\
<tool_call>
{"name": "apply_edit", "arguments": {"program": "exposure=+0.4; contrast=+10"}}
</tool_call>
<tool_call>
{"name": "inpaint", "arguments": {"box": [10, 20, 30, 40], "prompt": "clean skin"}}
</tool_call>
<tool_response>
The edit was applied. The new image is attached.
</tool_response>
<tool_call>
{"name": "edit_image", "arguments": {"instruction": "remove the scratch", "region": "sky"}}
</tool_call>
<tool_call>
{"name": "get_reward", "arguments": {}}
</tool_call>
You may call one or more functions to assist with the user query.
You are provided with function signatures within <tools></tools> XML tags.
For each function call, return a json object with function name and arguments.
{"type": "function", "function": {"name": "apply_edit", "description": "Apply an edit program to the image.", \
"parameters": {"type": "object", "properties": {"program": {"type": "string", "description": "The edits."}}, \
"required": ["program"]}}}
You are a helpful assistant. You are a professional photo retoucher.
system user assistant tool image text image_url video function arguments name content role
0 1 2 3 4 5 6 7 8 9 10 20 25 30 40 50 64 75 90 100 128 150 255 512 1024 0.1 0.25 0.5 0.75 1.0 -1.0 +1.0
true false null yes no ok error invalid missing unknown value range param op
"""

_NAMES = """\
{"exposure": 0.3, "contrast": 12, "highlights": -25, "shadows": 20, "whites": 4, "blacks": -6, "temperature": 8}
{"tint": -2, "vibrance": 15, "saturation": 5, "texture": 6, "clarity": 10, "dehaze": 4, "sharpening": 30}
{"sharpen_radius": 1.2, "noise_reduction": 10, "vignette_amount": -12, "vignette_midpoint": 50}
{"vignette_feather": 50, "grain_amount": 8, "grain_size": 25, "tone_shadows": 6, "tone_darks": -4}
{"tone_lights": 5, "tone_highlights": -8, "tone_shadow_split": 25, "tone_midtone_split": 50}
{"tone_highlight_split": 75, "hsl_hue_red": 2, "hsl_saturation_red": -4, "hsl_luminance_red": 3}
{"hsl_hue_orange": 1, "hsl_saturation_orange": 6, "hsl_luminance_orange": 8, "hsl_hue_yellow": -5}
{"hsl_saturation_yellow": -10, "hsl_luminance_yellow": 4, "hsl_hue_green": 9, "hsl_saturation_green": -6}
{"hsl_luminance_green": -3, "hsl_hue_aqua": 2, "hsl_saturation_aqua": 7, "hsl_luminance_aqua": 1}
{"hsl_hue_blue": -4, "hsl_saturation_blue": 12, "hsl_luminance_blue": -9, "hsl_hue_purple": 3}
{"hsl_saturation_purple": -2, "hsl_luminance_purple": 2, "hsl_hue_magenta": 1, "hsl_saturation_magenta": 3}
{"hsl_luminance_magenta": -1, "grade_shadow_hue": 210, "grade_shadow_saturation": 15, "grade_shadow_luminance": -5}
{"grade_midtone_hue": 35, "grade_midtone_saturation": 8, "grade_midtone_luminance": 2, "grade_highlight_hue": 45}
{"grade_highlight_saturation": 12, "grade_highlight_luminance": 4, "grade_global_hue": 30}
{"grade_global_saturation": 5, "grade_global_luminance": 0, "grade_balance": 10, "grade_blending": 50}
{"IncrementalTemperature": 6, "PostCropVignetteMidpoint": 50, "PostCropVignetteFeather": 50, "GrainSize": 25}
{"ColorGradeShadowLum": -5, "ColorGradeMidtoneLum": 2, "ColorGradeHighlightLum": 4, "ColorGradeGlobalHue": 30}
{"ColorGradeGlobalSat": 5, "ColorGradeGlobalLum": 0, "SplitToningBalance": 10, "ColorGradeBlending": 50}
[{"flaw_type": "hand_distortion", "description": "the left hand has six fingers and a bent thumb"}, \
{"flaw_type": "face_distortion", "description": "the eyes are asymmetric and the mouth is warped"}]
[{"flaw_type": "limb_deformity", "description": "the arm bends at an impossible angle"}, \
{"flaw_type": "color_inconsistency", "description": "the shirt changes color across the seam"}]
[{"flaw_type": "texture_inconsistency", "description": "the skin texture is smeared on the cheek"}, \
{"flaw_type": "proportion_error", "description": "the head is too large for the body"}]
[{"flaw_type": "perspective_error", "description": "the table edges do not meet the vanishing point"}, \
{"flaw_type": "object_deformation", "description": "the cup handle is melted into the rim"}]
[{"flaw_type": "object_redundancy", "description": "a duplicated lamp floats next to the window"}, \
{"flaw_type": "interaction_distortion", "description": "the fingers pass through the guitar neck"}]
[{"flaw_type": "text_anomaly", "description": "the sign shows garbled letters"}, \
{"flaw_type": "local_artifact", "description": "a noisy patch of pixels near the horizon"}]
human_anatomical_distortion attribute_inconsistency spatial_error object_deformation_or_redundancy
action_and_interaction_distortion miscellaneous genblemish taxonomy dimension category severity location
"""

CORPUS: str = _PROSE + _FORMATS + _NAMES + _TOOLS
"""The whole training text (a few KB), deterministic."""

__all__ = ["CORPUS"]
