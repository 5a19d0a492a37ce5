/*-------------------------------------------------------------------------
 * target_shape.cpp
 *    A configuration's target shape (see target_shape.hpp).
 *
 * IDENTIFICATION  src/config/target_shape.cpp
 *-------------------------------------------------------------------------
 */
#include "config/target_shape.hpp"

#include <string>

namespace pgdw::config {

core::TargetShape
TargetShapeOf(const TableConfig &cfg)
{
	core::TargetShape shape;
	shape.schema = cfg.target_schema;
	shape.table = cfg.target_name;
	for (int c = 0; c < cfg.ncolumns; c++) {
		shape.columns.emplace_back(cfg.columns[c].modern_name);
		if (cfg.columns[c].is_key)
			shape.key.push_back(c);
	}
	shape.stage = "dw_stage_" + std::to_string(cfg.relid);
	return shape;
}

} // namespace pgdw::config
