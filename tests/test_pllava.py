"""PLLaVA-style LLaVA (issue 16, work in progress): the class equals a plain reference forward of the same math."""

import torch
import torch.nn.functional as F

from mapflow_utils import pllava


def _tiny(num_frames=4, pool=(2, 2, 2)):
    from transformers import CLIPVisionConfig, LlamaConfig, LlavaConfig

    vision = CLIPVisionConfig(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2,
                              image_size=32, patch_size=8, projection_dim=32)  # 4×4 patches per frame
    text = LlamaConfig(hidden_size=48, intermediate_size=96, num_hidden_layers=2, num_attention_heads=4,
                       num_key_value_heads=2, vocab_size=64, max_position_embeddings=256)
    cfg = LlavaConfig(vision_config=vision, text_config=text, image_token_index=63, vision_feature_layer=-2,
                      vision_feature_select_strategy="default", projector_hidden_act="gelu")
    cfg.pooling_shape, cfg.num_frames, cfg.use_pooling = list(pool), num_frames, True
    torch.manual_seed(0)
    return pllava.PllavaForConditionalGeneration(cfg).eval(), cfg


def test_pllava_pools_after_the_projector_and_matches_a_reference_forward():
    model, cfg = _tiny()
    t, h, w = cfg.pooling_shape
    ids = torch.tensor([[1, 5, 6] + [cfg.image_token_index] * (t * h * w) + [7, 8, 9]])
    pixels = torch.randn(cfg.num_frames, 3, 32, 32)
    with torch.no_grad():
        got = model(input_ids=ids, pixel_values=pixels).logits
        # reference: CLIP per frame (layer -2, CLS dropped) -> projector per patch -> 3-D average pool -> merge
        hs = model.model.vision_tower(pixels, output_hidden_states=True).hidden_states[-2][:, 1:]  # [T, 16, 32]
        proj = model.model.multi_modal_projector(hs)  # [T, 16, 48]
        grid = proj.reshape(cfg.num_frames, 4, 4, -1).permute(3, 0, 1, 2)[None]
        pooled = F.avg_pool3d(grid, (2, 2, 2))[0].permute(1, 2, 3, 0).reshape(-1, proj.shape[-1])  # exact halves
        emb = model.get_input_embeddings()(ids)
        emb[0, 3:3 + t * h * w] = pooled
        want = model.lm_head(model.model.language_model(inputs_embeds=emb).last_hidden_state)
    torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-5)


def test_pooling_is_not_llava_next_videos_order():
    """Pooling after the projector differs from pooling before it (LlavaNextVideo's order): the GELU between."""
    model, cfg = _tiny()
    pixels = torch.randn(cfg.num_frames, 3, 32, 32)
    with torch.no_grad():
        hs = model.model.vision_tower(pixels, output_hidden_states=True).hidden_states[-2][:, 1:]
        after = pllava.pool_video(model.model.multi_modal_projector(hs), tuple(cfg.pooling_shape))
        before = model.model.multi_modal_projector(pllava.pool_video(hs, tuple(cfg.pooling_shape)))
    assert not torch.allclose(after, before, atol=1e-4)
